"""VOTable 1.4 (TABLEDATA or BINARY2), streamed from row batches.

FIELDs are built from the column declarations (unit, UCD, description) and the PostgreSQL result types,
not from astropy's guesses: int64 stays `long`, booleans are `boolean` (not `bit`), text is `char`
with arraysize `*`, and NULL is an empty cell (TABLEDATA) or a set bit in the row's null mask (BINARY2).
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Iterable, Iterator
from functools import lru_cache
from xml.sax.saxutils import escape, quoteattr

from catalogdb.writers.fields import Field, ResultStatus, text_value

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"

# Characters XML 1.0 cannot carry, even as references (control characters, surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value) -> str:
    """Text content for XML: escaped, with characters XML cannot carry replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def xml_attr(value) -> str:
    """A quoted XML attribute value, with characters XML cannot carry replaced by U+FFFD."""
    return quoteattr(_NOT_XML.sub("\ufffd", str(value)))


def _float4_text(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.9g}"  # 9 significant digits round-trip every float32
    return text_value(value)


def _cell_writer(field: Field):
    if field.datatype == "float":
        return _float4_text
    if field.datatype == "char":
        return lambda v: xml_text(text_value(v))
    return text_value


# --- VOTable ----------------------------------------------------------------------------------------


def _attr(name: str, value) -> str:
    return f" {name}={xml_attr(value)}" if value not in (None, "") else ""


@lru_cache(maxsize=4096)  # the same fields come back with every query of a table
def _field_xml(field: Field) -> str:
    desc = f"<DESCRIPTION>{xml_text(field.description)}</DESCRIPTION>" if field.description else ""
    attrs = (_attr("name", field.name) + _attr("datatype", field.datatype) + _attr("arraysize", field.arraysize)
             + _attr("xtype", field.xtype) + _attr("unit", field.unit) + _attr("ucd", field.ucd)
             + _attr("ID", field.id))
    return f"<FIELD{attrs}>{desc}</FIELD>\n" if desc else f"<FIELD{attrs}/>\n"


def _info(name: str, value: str, text: str | None = None) -> str:
    body = xml_text(text) if text else ""
    return f"<INFO{_attr('name', name)}{_attr('value', value)}>{body}</INFO>\n"


def _head(infos: Iterable[tuple[str, str]]) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VOTABLE version="1.4" xmlns="{VOTABLE_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            '<RESOURCE type="results">\n'
            + "".join(_info(n, v) for n, v in infos))


def error_document(message: str) -> bytes:
    """A TAP error VOTable: QUERY_STATUS ERROR with the message (as value and as text)."""
    return (_head([]) + _info("QUERY_STATUS", "ERROR", message) + "</RESOURCE>\n</VOTABLE>\n").encode()


def votable(fields: list[Field], batches: Iterable[list[tuple]], status: ResultStatus,
            infos: Iterable[tuple[str, str]] = (), serialization: str = "tabledata",
            resources: str = "") -> Iterator[bytes]:
    """A VOTable of the rows, as chunks; `status` is read after the last row (overflow, late error).

    `resources` is XML of further RESOURCE elements (service descriptors) after the results.
    """
    head = _head([("QUERY_STATUS", "OK"), *infos]) + "<TABLE>\n" + "".join(_field_xml(f) for f in fields)
    if serialization == "binary2":
        yield (head + '<DATA><BINARY2><STREAM encoding="base64">\n').encode()
        yield from _binary2(fields, batches)
        yield b"</STREAM></BINARY2></DATA>\n</TABLE>\n"
    else:
        yield (head + "<DATA><TABLEDATA>\n").encode()
        writers = [_cell_writer(f) for f in fields]
        for batch in batches:
            parts = []
            for row in batch:
                parts.append("<TR>")
                for w, v in zip(writers, row, strict=True):
                    parts.append("<TD/>" if v is None else f"<TD>{w(v)}</TD>")
                parts.append("</TR>\n")
            yield "".join(parts).encode()
        yield b"</TABLEDATA></DATA>\n</TABLE>\n"
    tail = ""
    if status.error:
        tail = _info("QUERY_STATUS", "ERROR", status.error)
    elif status.overflow:
        tail = _info("QUERY_STATUS", "OVERFLOW")
    yield (tail + "</RESOURCE>\n" + resources + "</VOTABLE>\n").encode()




_FIXED = {"short": ">h", "int": ">i", "long": ">q", "float": ">f", "double": ">d"}
_ZERO = {"short": 0, "int": 0, "long": 0, "float": math.nan, "double": math.nan}


def _binary2_encoder(field: Field):
    if field.datatype in _FIXED:
        pack = struct.Struct(_FIXED[field.datatype]).pack
        zero = pack(_ZERO[field.datatype])
        if field.datatype in ("float", "double"):
            return lambda v: zero if v is None else pack(float(v))
        return lambda v: zero if v is None else pack(int(v))
    if field.datatype == "boolean":
        return lambda v: b"?" if v is None else (b"T" if v else b"F")
    length = struct.Struct(">I").pack

    def text(v) -> bytes:
        if v is None:
            return length(0)
        raw = text_value(v).encode()
        return length(len(raw)) + raw
    return text


def _binary2(fields: list[Field], batches: Iterable[list[tuple]]) -> Iterator[bytes]:
    encoders = [_binary2_encoder(f) for f in fields]
    nmask = (len(fields) + 7) // 8
    pending = b""
    for batch in batches:
        out = bytearray(pending)
        for row in batch:
            mask = 0
            cells = []
            for i, (enc, v) in enumerate(zip(encoders, row, strict=True)):
                if v is None:
                    mask |= 1 << (nmask * 8 - 1 - i)
                cells.append(enc(v))
            out += mask.to_bytes(nmask, "big")
            out += b"".join(cells)
        cut = len(out) - len(out) % 57  # whole base64 lines of 76 characters
        yield base64.encodebytes(bytes(out[:cut]))
        pending = bytes(out[cut:])
    if pending:
        yield base64.encodebytes(pending)
