"""TAP UPLOAD (TAP 1.1 section 3.3.4, DALI): client tables as TAP_UPLOAD.name for one query or job.

`UPLOAD=name,param:part` names a multipart part holding a VOTable (TABLEDATA, BINARY or BINARY2, read by
astropy); `UPLOAD=name,https://...` is fetched by the service only where CATALOGDB_TAP_UPLOAD_URLS=1 (off
by default: the service downloads nothing unless its operator says so). Several tables are separated by ';'.

Each table becomes a TEMPORARY table (ON COMMIT DROP) created in the query's own transaction, so it lives
as long as the query (or the job's query) and no other connection sees it. Its position columns (UCD
pos.eq.ra / pos.eq.dec, else the names ra and dec) are stored as double precision with a q3c index, so
a crossmatch written with CONTAINS(POINT, CIRCLE) or DISTANCE uses q3c_join on either side.
"""

from __future__ import annotations

import io
import os
import re
import urllib.request
import warnings
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from catalogdb.db import published
from catalogdb.tap.request import TapRequestError

SCHEMA = "TAP_UPLOAD"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# VOTable datatype -> PostgreSQL type of the temporary table's column
PG_TYPES = {"boolean": "boolean", "bit": "boolean", "unsignedByte": "smallint", "short": "smallint",
            "int": "integer", "long": "bigint", "float": "real", "double": "double precision",
            "char": "text", "unicodeChar": "text"}


@dataclass(frozen=True)
class UploadLimits:
    """How much a client may upload (environment: CATALOGDB_TAP_UPLOAD_ROWS, _UPLOAD_BYTES, _UPLOAD_URLS)."""

    max_rows: int = 100_000
    max_bytes: int = 20 * 1024 * 1024
    allow_urls: bool = False

    @classmethod
    def from_env(cls) -> UploadLimits:
        """Defaults overridden by the environment."""
        env = os.environ.get
        d = cls()
        return cls(max_rows=int(env("CATALOGDB_TAP_UPLOAD_ROWS", d.max_rows)),
                   max_bytes=int(env("CATALOGDB_TAP_UPLOAD_BYTES", d.max_bytes)),
                   allow_urls=env("CATALOGDB_TAP_UPLOAD_URLS", "0").lower() in ("1", "true", "yes"))


@dataclass(frozen=True)
class Upload:
    """One uploaded table: its name, the VOTable bytes, and the table declaration ADQL resolves against."""

    name: str
    data: bytes
    table: published.Table
    columns: tuple[tuple[str, str], ...]  # (PostgreSQL column name, type) in order
    position: tuple[str, str] | None  # the (ra, dec) columns given a q3c index
    rows: list[tuple]


def sources(value: str) -> list[tuple[str, str]]:
    """(table name, source) pairs of an UPLOAD parameter value."""
    out: list[tuple[str, str]] = []
    for item in (p.strip() for p in value.split(";")):
        if not item:
            continue
        name, sep, source = item.partition(",")
        name, source = name.strip(), source.strip()
        if not sep or not source:
            raise TapRequestError(f"UPLOAD {item!r}: expected name,param:part or name,URL")
        if not NAME.fullmatch(name):
            raise TapRequestError(f"UPLOAD {item!r}: the table name must be a letter followed by letters, digits "
                                  "or '_'")
        if name.lower() in (n.lower() for n, _ in out):
            raise TapRequestError(f"UPLOAD: table {name} is given twice")
        out.append((name, source))
    if not out:
        raise TapRequestError("UPLOAD is empty: expected name,param:part or name,URL")
    return out


def _fetch(name: str, url: str, limits: UploadLimits) -> bytes:
    if not limits.allow_urls:
        raise TapRequestError(f"UPLOAD {name}: this service does not fetch tables from URLs; send the VOTable in "
                              f"the request (UPLOAD={name},param:{name} with a multipart part {name})")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - http(s) only, checked by the caller
            data = resp.read(limits.max_bytes + 1)
    except OSError as exc:
        raise TapRequestError(f"UPLOAD {name}: cannot read {url}: {exc}") from None
    return data


def read_sources(value: str, parts: dict[str, bytes], limits: UploadLimits) -> dict[str, bytes]:
    """The VOTable bytes of every table of an UPLOAD parameter (multipart parts or, where allowed, URLs)."""
    out: dict[str, bytes] = {}
    for name, source in sources(value):
        if source.startswith("param:"):
            part = source[len("param:"):]
            if part not in parts:
                raise TapRequestError(f"UPLOAD {name}: the request has no multipart part {part!r}")
            data = parts[part]
        elif source.lower().startswith(("http://", "https://")):
            data = _fetch(name, source, limits)
        else:
            raise TapRequestError(f"UPLOAD {name}: source {source!r} is neither param:part nor an http(s) URL")
        if len(data) > limits.max_bytes:
            raise TapRequestError(f"UPLOAD {name}: the table is larger than the {limits.max_bytes} bytes allowed")
        out[name] = data
    total = sum(len(d) for d in out.values())
    if total > limits.max_bytes:
        raise TapRequestError(f"UPLOAD: the tables hold {total} bytes together, more than the "
                              f"{limits.max_bytes} allowed")
    return out


def _position(fields, names: list[str]) -> tuple[str, str] | None:
    numeric = {n for f, n in zip(fields, names, strict=True) if PG_TYPES[f.datatype] in ("real", "double precision")}

    def find(axis: str) -> str | None:
        by_ucd = [n for f, n in zip(fields, names, strict=True)
                  if n in numeric and f.ucd and f"pos.eq.{axis}" in f.ucd.lower()]
        main = [n for f, n in zip(fields, names, strict=True) if n in by_ucd and "meta.main" in f.ucd.lower()]
        if main or by_ucd:
            return (main or by_ucd)[0]
        return axis if axis in numeric else None

    ra, dec = find("ra"), find("dec")
    return (ra, dec) if ra and dec else None


def _cell(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # a masked variable-length string cell
        return None
    return value


def parse(name: str, data: bytes, limits: UploadLimits) -> Upload:
    """The table of one uploaded VOTable, checked against the limits; TapRequestError names what is wrong."""
    from astropy.io.votable import parse as parse_votable

    where = f"UPLOAD {name}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns on every small deviation from the schema
            votable = parse_votable(io.BytesIO(data), verify="ignore")
            table = votable.get_first_table()
    except Exception as exc:  # noqa: BLE001 - whatever the parser says, the upload is not a readable VOTable
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TapRequestError(f"{where}: not a readable VOTable ({first[:200]})") from None
    fields = list(table.fields)
    if not fields:
        raise TapRequestError(f"{where}: the table has no columns")
    names = []
    for f in fields:
        column = f.name.lower() if NAME.fullmatch(f.name) else f.name
        if column in names:
            raise TapRequestError(f"{where}: column name {f.name!r} is given twice (names are case-insensitive)")
        if f.datatype not in PG_TYPES:
            raise TapRequestError(f"{where}: column {f.name}: datatype {f.datatype} is not supported")
        if f.datatype not in ("char", "unicodeChar") and f.arraysize not in (None, "1"):
            raise TapRequestError(f"{where}: column {f.name}: arrays are not supported (arraysize {f.arraysize})")
        names.append(column)
    array = table.array
    if len(array) > limits.max_rows:
        raise TapRequestError(f"{where}: {len(array)} rows, more than the {limits.max_rows} allowed")
    position = _position(fields, names)
    types = [("double precision" if position and n in position else PG_TYPES[f.datatype])
             for f, n in zip(fields, names, strict=True)]
    declared = tuple(published.Column(n, f.unit and str(f.unit), f.ucd, f.description or "",
                                      xtype=f.xtype if PG_TYPES[f.datatype] == "text" else None,
                                      indexed=bool(position and n in position))
                     for f, n in zip(fields, names, strict=True))
    pg_name = name.lower()
    tap_table = published.Table(SCHEMA, f"{SCHEMA}.{name}", "pg_temp", pg_name, f"Table uploaded as {name}",
                                "table", declared)
    columns = []
    for key in array.dtype.names:
        values, mask = array.data[key].tolist(), np.ma.getmaskarray(array[key])
        columns.append([None if m else _cell(v) for v, m in zip(values, mask, strict=True)])
    rows = list(zip(*columns, strict=True))
    return Upload(name, data, tap_table, tuple(zip(names, types, strict=True)), position, rows)


async def request_tables(request, params: dict[str, str], limits: UploadLimits) -> dict[str, bytes]:
    """The VOTable bytes of the request's UPLOAD parameter (empty without one), from its multipart parts."""
    if "upload" not in params:
        return {}
    parts: dict[str, bytes] = {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        for key, value in (await request.form()).multi_items():  # the form is parsed once and cached
            if not isinstance(value, str):
                parts[key] = await value.read(limits.max_bytes + 1)
    return read_sources(params["upload"], parts, limits)


def parse_all(tables: dict[str, bytes], limits: UploadLimits) -> list[Upload]:
    """Every uploaded table, parsed and checked."""
    return [parse(name, data, limits) for name, data in tables.items()]


def create(conn: psycopg.Connection, uploads: list[Upload]) -> None:
    """The uploads as temporary tables of conn's current transaction, which then becomes read-only.

    The service's sessions are read-only by default; this transaction is made read-write just long enough to
    create and fill its own temporary tables (ON COMMIT DROP: gone when the query's transaction ends).
    """
    conn.execute("SET TRANSACTION READ WRITE")
    for u in uploads:
        ident = sql.Identifier("pg_temp", u.table.pg_name)
        cols = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in u.columns)
        conn.execute(sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            sql.Identifier(u.table.pg_name), cols))
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(ident)) as copy:
            for row in u.rows:
                copy.write_row(row)
        if u.position:
            ra, dec = (sql.Identifier(c) for c in u.position)
            conn.execute(sql.SQL("CREATE INDEX ON {} (q3c_ang2ipix({}, {}))").format(ident, ra, dec))
        conn.execute(sql.SQL("ANALYZE {}").format(ident))
    conn.execute("SET TRANSACTION READ ONLY")
