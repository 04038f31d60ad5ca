"""Catalogue files: final_catalog (or any table or view) as ECSV, FITS, VOTable or Parquet.

Rows stream from a server-side cursor in batches through the shared writers (catalogdb.writers), so memory
stays bounded whatever the table's size. Each file carries the columns' units, UCDs and descriptions in its
own metadata: ECSV header, FITS TUNIT/TUCD/TCOMM, VOTable FIELD, Parquet field and schema metadata.
Everything is read in one read-only, repeatable-read transaction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.db import published, schema
from catalogdb.errors import BadInput
from catalogdb.writers import WRITERS, Output, ResultStatus, fields_for, writer_for_suffix

# The writers a catalogue file can have; "csv" means ECSV: a CSV file whose header keeps the metadata.
FORMATS = ("ecsv", "fits", "votable", "parquet")
ALIASES = {"csv": "ecsv"}
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
        if fmt.lower() not in (*FORMATS, *ALIASES):
            raise BadInput(f"unknown format {fmt!r} (expected one of {', '.join((*ALIASES, *FORMATS))})")
        return ALIASES.get(fmt.lower(), fmt.lower())
    found = writer_for_suffix(path.suffix)
    if found is None:
        raise BadInput(f"{path}: cannot tell the format from the suffix {path.suffix!r}: "
                       f"use --format ({', '.join((*ALIASES, *FORMATS))})")
    return found.name


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

        status = ResultStatus()
        output = Output(fields, _counting(batches(), status), status, name=relation,
                        infos=(("DESCRIPTION", f"catalogdb export of {relation}"),), serialization="binary2")
        with open(tmp, "wb") as out:
            for chunk in WRITERS[fmt].write(output):
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
