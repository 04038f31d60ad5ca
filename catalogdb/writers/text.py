"""Text tables: plain CSV (as TAP's text/csv) and ECSV 1.0 (CSV whose header carries the column metadata)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from catalogdb.writers.fields import Field, ResultStatus, text_value


def csv_rows(fields: list[Field], batches: Iterable[list[tuple]], status: ResultStatus) -> Iterator[bytes]:
    """CSV with a header line; NULL is an empty cell, booleans true/false."""
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return text_value(v)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([f.name for f in fields])
    for batch in batches:
        for row in batch:
            writer.writerow([cell(v) for v in row])
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue().encode()


def ecsv_rows(fields: list[Field], batches: Iterable[list[tuple]], name: str) -> Iterator[bytes]:
    """ECSV 1.0: a CSV file whose '#' header carries datatype, unit, UCD and description per column."""
    kinds = {"short": "int16", "int": "int32", "long": "int64", "float": "float32", "double": "float64",
             "boolean": "bool"}
    head = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    for f in fields:
        entry = {"name": f.name, "datatype": kinds.get(f.datatype, "string")}
        if f.unit:
            entry["unit"] = f.unit
        if f.description:
            entry["description"] = f.description
        if f.ucd:
            entry["meta"] = {"ucd": f.ucd}
        head.append("# - " + json.dumps(entry))  # JSON is YAML: no YAML writer needed
    head += ["# meta: " + json.dumps({"comments": [f"catalogdb export of {name}"]}), "# schema: astropy-2.0"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([f.name for f in fields])
    yield ("\n".join(head) + "\n" + buf.getvalue()).encode()

    def cell(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "True" if v else "False"
        if isinstance(v, float):
            return repr(v)
        return v if isinstance(v, str) else str(v)

    for batch in batches:
        buf.seek(0)
        buf.truncate()
        writer.writerows([cell(v) for v in row] for row in batch)
        yield buf.getvalue().encode()
