"""Staging and merge: a file's rows COPYed into a temporary table, repeated keys rejected, then merged into the
target with INSERT ... ON CONFLICT DO UPDATE ... WHERE (row differs), which tells inserted, updated and unchanged
rows apart."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import psycopg

from catalogdb.ingest.copy import quote
from catalogdb.ingest.rejects import Rejects, show

if TYPE_CHECKING:
    from catalogdb.ingest.spec import Spec

STAGING = "_ingest_staging"


def create_staging(cur: psycopg.Cursor, target: str) -> str:
    """A temporary table like `target` plus each row's file row number (_row), dropped at commit."""
    cur.execute(f"drop table if exists {STAGING}")
    cur.execute(f"create temp table {STAGING} (like {target} including defaults) on commit drop")
    cur.execute(f"alter table {STAGING} add column _row bigint")
    return STAGING


def dedupe_staging(cur: psycopg.Cursor, spec: Spec, stg: str, rejects: Rejects, file_of: dict[str, str]) -> int:
    """Duplicate keys inside the file: refuse (abort) or reject every repeat after the first (skip)."""
    key = ", ".join(quote(k) for k in spec.key)
    cur.execute(f"select exists (select 1 from {stg} group by {key} having count(*) > 1)")
    if not cur.fetchone()[0]:
        return 0
    cur.execute(
        f"select _row, first_row, {key} from (select *, min(_row) over (partition by {key}) as first_row "
        f"from {stg}) d where _row > first_row order by _row")
    dups = cur.fetchall()
    cols = [file_of[k] for k in spec.key]
    items = [(r[0], ",".join(cols), ",".join(show(v) for v in r[2:]), f"duplicates the key of row {r[1]}")
             for r in dups]
    if rejects.on_error == "abort":
        rejects.bad(items[:1])
    cur.execute(f"select * from {stg} where _row = any(%s) order by _row", ([r[0] for r in dups],))
    names = [d.name for d in cur.description]
    values = [{file_of.get(n, n): show(v) for n, v in zip(names, rec, strict=True)} for rec in cur.fetchall()]
    rejects.bad(items, values)
    cur.execute(f"delete from {stg} where _row = any(%s)", ([r[0] for r in dups],))
    return len(dups)


def merge(cur: psycopg.Cursor, spec: Spec, stg: str, columns: list[str]) -> tuple[int, int]:
    """INSERT ... ON CONFLICT DO UPDATE WHERE (row differs): (inserted, updated)."""
    cols = ", ".join(quote(c) for c in columns)
    key = ", ".join(quote(k) for k in spec.key)
    rest = [c for c in columns if c not in spec.key]
    if rest:
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in rest)
        old = ", ".join(f"t.{quote(c)}" for c in rest)
        new = ", ".join(f"excluded.{quote(c)}" for c in rest)
        conflict = f"do update set {sets} where row({old}) is distinct from row({new})"
    else:
        conflict = "do nothing"
    cur.execute(
        f"with m as (insert into {quote(spec.table)} as t ({cols}) select {cols} from {stg} "
        f"on conflict ({key}) {conflict} returning (xmax = 0) as ins) "
        "select count(*) filter (where ins), count(*) filter (where not ins) from m")
    inserted, updated = cur.fetchone()
    return int(inserted), int(updated)


PROBE_KEYS = 1_000  # keys of a chunk probed: enough to see a file that updates rows, cheap next to its COPY


def keys_present(cur: psycopg.Cursor, spec: Spec, rows) -> bool:
    """Whether a key among (evenly spaced) PROBE_KEYS of these arrow rows is in the target already: index probes."""
    if rows is None or not rows.num_rows:
        return False
    rows = rows.take(np.linspace(0, rows.num_rows - 1, min(rows.num_rows, PROBE_KEYS)).astype(np.int64))
    cur.execute("select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = %s::regclass and attname = any(%s)", (quote(spec.table), list(spec.key)))
    types = dict(cur.fetchall())
    arrays = ", ".join(f"%s::{types[k]}[]" for k in spec.key)
    names = ", ".join(quote(k) for k in spec.key)
    on = " and ".join(f"t.{quote(k)} = k.{quote(k)}" for k in spec.key)
    cur.execute(f"select exists (select 1 from unnest({arrays}) as k({names}) join {quote(spec.table)} t on {on})",
                [rows.column(k).to_pylist() for k in spec.key])
    return bool(cur.fetchone()[0])
