"""What every writer writes: the output columns (Field), the rows' end state (ResultStatus), cell text."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from catalogdb.db.published import Column

# PostgreSQL type OID -> VOTable datatype, arraysize, xtype.
OID_TYPES = {
    16: ("boolean", None, None), 20: ("long", None, None), 21: ("short", None, None), 23: ("int", None, None),
    26: ("long", None, None), 700: ("float", None, None), 701: ("double", None, None),
    1700: ("double", None, None), 1082: ("char", "*", "timestamp"), 1114: ("char", "*", "timestamp"),
    1184: ("char", "*", "timestamp"),
}


@dataclass(frozen=True)
class Field:
    """One output column: name, VOTable type and the declared metadata."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    description: str | None = None
    id: str | None = None  # the VOTable ID a service descriptor's PARAM refers to


def fields_for(description: Sequence, declared: dict[str, Column]) -> list[Field]:
    """Fields of a result from its cursor description and the declared metadata of its columns."""
    out = []
    for col in description:
        datatype, arraysize, xtype = OID_TYPES.get(col.type_code, ("char", "*", None))
        meta = declared.get(col.name.lower())
        if meta is not None and meta.bare != col.name and meta.bare.lower() != col.name:
            meta = None
        if datatype == "char" and xtype is None and meta is not None:
            xtype = meta.xtype  # e.g. an uploaded timestamp column, kept as text, keeps its xtype
        out.append(Field(col.name, datatype, arraysize, xtype, meta and meta.unit, meta and meta.ucd,
                         meta and meta.description))
    return out


@dataclass
class ResultStatus:
    """What is known only once the rows are out: MAXREC overflow, or an error after the first rows."""

    overflow: bool = False
    error: str | None = None
    rows: int = 0


def text_value(value) -> str:
    """Any non-NULL value as the text TABLEDATA and CSV carry."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)
