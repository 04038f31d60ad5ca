"""Catalogue files: final_catalog (or any table or view) as CSV (ECSV), FITS, VOTable or Parquet.

Rows stream from a server-side cursor in batches, so memory stays bounded whatever the table's size.
Each file carries the columns' units, UCDs and descriptions in its own metadata: ECSV header, FITS
TUNIT/TUCD/TCOMM, VOTable FIELD, Parquet field and schema metadata. Everything is read in one read-only,
repeatable-read transaction, so FITS's row count and string widths agree with the rows written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.db import published, schema
from catalogdb.errors import BadInput
from catalogdb.tap.votable import Field, ResultStatus, fields_for, fits_header, fits_rows, votable

FORMATS = ("csv", "fits", "votable", "parquet")
SUFFIXES = {".csv": "csv", ".ecsv": "csv", ".fits": "fits", ".fit": "fits", ".xml": "votable", ".vot": "votable",
            ".votable": "votable", ".parquet": "parquet", ".pq": "parquet"}
BATCH_ROWS = 10_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def declared_columns(relation: str) -> dict[str, published.Column]:
    """Unit, UCD and description per column as schema.py / views.py declare them (lower-case names)."""
    name = relation.split(".")[-1]
    for t in published.declared_tables():
        if t.pg_name == name:
            return {c.bare.lower(): c for c in t.columns}
    if name in schema.metadata.tables:
        table = schema.metadata.tables[name]
        return {c.name: published.Column(c.name, c.info.get("unit"), c.info.get("ucd"), c.comment or "")
                for c in table.columns}
    return {}


def _comments(conn, relation: str) -> dict[str, published.Column]:
    """Fallback metadata from SQL comments ('[unit] description' on views)."""
    rows = conn.execute(sa.text(
        "select a.attname, col_description(a.attrelid, a.attnum) from pg_attribute a "
        "where a.attrelid = cast(:rel as regclass) and a.attnum > 0 and not a.attisdropped"), {"rel": relation})
    out = {}
    for name, comment in rows:
        match = re.match(r"\[([^\]]+)\]\s*(.*)", comment or "")
        unit, text = (match.group(1), match.group(2)) if match else (None, comment or "")
        out[name.lower()] = published.Column(name, unit, None, text)
    return out


def resolve_format(path: Path, fmt: str | None) -> str:
    """The format named, or the one the file suffix implies."""
    if fmt:
        if fmt.lower() not in FORMATS:
            raise BadInput(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
        return fmt.lower()
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise BadInput(f"{path}: cannot tell the format from the suffix {path.suffix!r}: "
                       f"use --format ({', '.join(FORMATS)})")
    return found


def export(engine: Engine, path: Path, relation: str = "final_catalog", fmt: str | None = None,
           where: str | None = None, batch_rows: int = BATCH_ROWS) -> int:
    """Write `relation` (rows matching `where`) to `path`; returns the number of rows written."""
    fmt = resolve_format(path, fmt)
    if not _NAME.match(relation):
        raise BadInput(f"{relation!r} is not a table or view name")
    quoted = ".".join(f'"{part}"' for part in relation.split("."))
    sql = f"SELECT * FROM {quoted}" + (f" WHERE {where}" if where else "")
    raw = engine.raw_connection()
    tmp = path.with_name(path.name + ".part")
    try:
        conn: psycopg.Connection = raw.driver_connection
        conn.rollback()  # SET TRANSACTION must open the transaction
        with conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exists = conn.execute("select to_regclass(%s)", [quoted]).fetchone()[0]
        if exists is None:
            raise BadInput(f"no table or view {relation!r} in the database")
        with engine.connect() as meta_conn:
            declared = {**_comments(meta_conn, quoted), **declared_columns(relation)}
        cursor = conn.cursor(name="catalogdb_export")
        try:
            cursor.execute(sql)
        except psycopg.Error as exc:
            message = (exc.diag.message_primary or str(exc)).splitlines()[0]
            raise BadInput(f"--where {where!r}: {message}" if where else message) from None
        fields = fields_for(cursor.description, declared)

        def batches() -> Iterator[list[tuple]]:
            while rows := cursor.fetchmany(batch_rows):
                yield rows

        with open(tmp, "wb") as out:
            if fmt == "fits":
                nrows, widths = _fits_sizes(conn, sql, fields)
                out.write(fits_header(fields, nrows, widths, extname=relation.split(".")[-1].upper()))
                for chunk in fits_rows(fields, widths, batches()):
                    out.write(chunk)
                count = nrows
            elif fmt == "parquet":
                count = _parquet(out, fields, batches(), relation)
            else:
                status = ResultStatus()
                counted = _counting(batches(), status)
                chunks = _ecsv(fields, counted, relation) if fmt == "csv" else votable(
                    fields, counted, status, [("DESCRIPTION", f"catalogdb export of {relation}")], "binary2")
                for chunk in chunks:
                    out.write(chunk)
                count = status.rows
        os.replace(tmp, path)
        return count
    finally:
        tmp.unlink(missing_ok=True)
        raw.close()


def _counting(batches: Iterator[list[tuple]], status: ResultStatus) -> Iterator[list[tuple]]:
    for batch in batches:
        status.rows += len(batch)
        yield batch


def _fits_sizes(conn: psycopg.Connection, sql: str, fields: list[Field]) -> tuple[int, dict[str, int]]:
    """Row count and the longest text per string column, in the export's snapshot (FITS needs both first)."""
    text = [f for f in fields if f.datatype == "char"]
    widths = ", ".join(f'max(octet_length(q."{f.name}"::text))' for f in text)
    row = conn.execute(f"SELECT count(*){', ' + widths if widths else ''} FROM ({sql}) q").fetchone()
    return row[0], {f.name: (w or 1) for f, w in zip(text, row[1:], strict=True)}


def _ecsv(fields: list[Field], batches, relation: str) -> Iterator[bytes]:
    """ECSV 1.0: a CSV file whose '#' header carries datatype, unit, UCD and description per column."""
    import csv
    import io

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
    head += ["# meta: " + json.dumps({"comments": [f"catalogdb export of {relation}"]}), "# schema: astropy-2.0"]
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


def _parquet(out, fields: list[Field], batches, relation: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"short": pa.int16(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(),
             "double": pa.float64(), "boolean": pa.bool_()}
    arrow_fields = []
    for f in fields:
        meta = {k: v for k, v in (("unit", f.unit), ("ucd", f.ucd), ("description", f.description)) if v}
        arrow_fields.append(pa.field(f.name, types.get(f.datatype, pa.string()), metadata=meta or None))
    columns_meta = [{"name": f.name, "unit": f.unit, "ucd": f.ucd, "description": f.description} for f in fields]
    arrow_schema = pa.schema(arrow_fields, metadata={"catalogdb": json.dumps(
        {"relation": relation, "columns": columns_meta})})
    text = [i for i, f in enumerate(fields) if f.datatype not in types]
    count = 0
    with pq.ParquetWriter(out, arrow_schema) as writer:
        for batch in batches:
            cols = list(zip(*batch, strict=True))
            for i in text:
                cols[i] = [None if v is None else (v if isinstance(v, str) else str(v)) for v in cols[i]]
            writer.write_batch(pa.record_batch([pa.array(c, type=fld.type) for c, fld in
                                                zip(cols, arrow_fields, strict=True)], schema=arrow_schema))
            count += len(batch)
    return count
