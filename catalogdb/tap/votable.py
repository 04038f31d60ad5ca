"""Result serialisation: VOTable (TABLEDATA or BINARY2), CSV and FITS, streamed from row batches.

FIELDs are built from the column declarations (unit, UCD, description) and the PostgreSQL result types,
not from astropy's guesses: int64 stays `long`, booleans are `boolean` (not `bit`), text is `char`
with arraysize `*`, and NULL is an empty cell (TABLEDATA) or a set bit in the row's null mask (BINARY2).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import pickle
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from catalogdb.db.published import Column

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"

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


# --- text forms -----------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry, even as references (control characters, surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value) -> str:
    """Text content for XML: escaped, with characters XML cannot carry replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def xml_attr(value) -> str:
    """A quoted XML attribute value, with characters XML cannot carry replaced by U+FFFD."""
    return quoteattr(_NOT_XML.sub("\ufffd", str(value)))


def _text(value) -> str:
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


def _float4_text(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.9g}"  # 9 significant digits round-trip every float32
    return _text(value)


def _cell_writer(field: Field):
    if field.datatype == "float":
        return _float4_text
    if field.datatype == "char":
        return lambda v: xml_text(_text(v))
    return _text


# --- VOTable ----------------------------------------------------------------------------------------


def _attr(name: str, value) -> str:
    return f" {name}={xml_attr(value)}" if value not in (None, "") else ""


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


@dataclass
class ResultStatus:
    """What is known only once the rows are out: MAXREC overflow, or an error after the first rows."""

    overflow: bool = False
    error: str | None = None
    rows: int = 0


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
        raw = _text(v).encode()
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


# --- CSV ----------------------------------------------------------------------------------------------


def csv_rows(fields: list[Field], batches: Iterable[list[tuple]], status: ResultStatus) -> Iterator[bytes]:
    """CSV with a header line; NULL is an empty cell, booleans true/false."""
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return _text(v)

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


# --- FITS ---------------------------------------------------------------------------------------------

INT_NULL = {"short": -(2**15), "int": -(2**31), "long": -(2**63)}
_FITS = {"short": ("I", ">i2"), "int": ("J", ">i4"), "long": ("K", ">i8"), "float": ("E", ">f4"),
         "double": ("D", ">f8"), "boolean": ("L", "S1")}


def fits_header(fields: list[Field], nrows: int, widths: dict[str, int], extname: str = "RESULTS") -> bytes:
    """Primary HDU plus the BINTABLE header: TTYPE/TFORM/TUNIT/TNULL, and TUCD/TCOMM for UCD and description."""
    from astropy.io import fits

    cols = []
    for f in fields:
        form = _FITS.get(f.datatype, (f"{max(widths.get(f.name, 1), 1)}A", None))[0]
        kw = {"null": INT_NULL[f.datatype]} if f.datatype in INT_NULL else {}
        cols.append(fits.Column(name=f.name, format=form, unit=f.unit or None, **kw))
    hdu = fits.BinTableHDU.from_columns(cols, nrows=0)
    header = hdu.header
    header["NAXIS2"] = nrows
    header["EXTNAME"] = extname
    for i, f in enumerate(fields, start=1):
        if f.ucd:
            header[f"TUCD{i}"] = f.ucd
        if f.description:
            header[f"TCOMM{i}"] = f.description[:68]
    primary = fits.PrimaryHDU().header.tostring().encode()
    return primary + header.tostring().encode()


def _fits_dtype(fields: list[Field], widths: dict[str, int]) -> np.dtype:
    return np.dtype([(f"c{i}", _FITS[f.datatype][1] if f.datatype in _FITS else f"S{max(widths.get(f.name, 1), 1)}")
                     for i, f in enumerate(fields)])


def fits_rows(fields: list[Field], widths: dict[str, int], batches: Iterable[list[tuple]]) -> Iterator[bytes]:
    """The big-endian rows of the BINTABLE, padded to a 2880-byte block at the end."""
    dtype = _fits_dtype(fields, widths)
    written = 0
    for batch in batches:
        if not batch:
            continue
        arr = np.zeros(len(batch), dtype=dtype)
        for i, f in enumerate(fields):
            values = [row[i] for row in batch]
            key = f"c{i}"
            if f.datatype in INT_NULL:
                arr[key] = [INT_NULL[f.datatype] if v is None else v for v in values]
            elif f.datatype in ("float", "double"):
                arr[key] = [math.nan if v is None else v for v in values]
            elif f.datatype == "boolean":
                arr[key] = [b"\0" if v is None else (b"T" if v else b"F") for v in values]
            else:
                arr[key] = [b"" if v is None else _text(v).encode() for v in values]
        data = arr.tobytes()
        written += len(data)
        yield data
    if written % 2880:
        yield b"\0" * (2880 - written % 2880)


def fits_file(fields: list[Field], batches: Iterable[list[tuple]]) -> Iterator[bytes]:
    """A whole FITS file, streamed: the batches go to a temporary file while the row count and the widths of
    the text columns (which the header needs first) are found, then header and rows are written from it."""
    text = [i for i, f in enumerate(fields) if f.datatype not in _FITS]
    widths = dict.fromkeys((fields[i].name for i in text), 1)
    nrows = 0
    with tempfile.TemporaryFile() as spool:
        for batch in batches:
            for i in text:
                name = fields[i].name
                widths[name] = max(widths[name], max((len(_text(r[i]).encode()) for r in batch if r[i] is not None),
                                                     default=1))
            nrows += len(batch)
            pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
        spool.seek(0)

        def spooled() -> Iterator[list[tuple]]:
            while True:
                try:
                    yield pickle.load(spool)  # noqa: S301 - our own file, written just above
                except EOFError:
                    return

        yield fits_header(fields, nrows, widths)
        yield from fits_rows(fields, widths, spooled())
