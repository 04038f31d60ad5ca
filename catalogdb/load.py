"""Generic survey-catalogue loader: a declarative spec per source (catalogdb/sources/*.toml), read, validate, COPY.

One `ingest_files` call is one transaction: every file is read in chunks, validated, COPYed (binary,
encoded with numpy; see benchmarks/ingest.py) into a temporary staging table and merged into the target
with INSERT ... ON CONFLICT DO UPDATE ... WHERE (row differs), which separates inserted, updated and
unchanged rows. Into an empty target the rows are COPYed straight in (in a savepoint, falling back to
staging when the file repeats a key). The run row (inputs with SHA-256, counts) is written in the same
transaction, so a failed or killed run leaves the database as it was.
"""

from __future__ import annotations

import csv
import json
import math
import os
import queue
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs
from catalogdb.config import SOURCE_SPECS_DIR
from catalogdb.db.schema import metadata
from catalogdb.errors import BadInput, CatalogdbError
from catalogdb.readers import Chunk, TableFile, detect_format, open_table

Progress = Callable[[str, int, "int | None"], None]

ARROW_TYPES = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
               "float64": pa.float64(), "text": pa.string(), "date": pa.date32()}
SQL_TYPES = {"int16": sa.SmallInteger, "int32": sa.Integer, "int64": sa.BigInteger, "float32": sa.REAL,
             "float64": sa.Double, "text": sa.Text, "date": sa.Date}
INT_RANGE = {"int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


# --- specs ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnSpec:
    """One table column: the file column it comes from, its type, expected unit, whether required."""

    name: str
    file: str
    type: str
    unit: str | None = None
    units_accepted: tuple[str, ...] = ()
    required: bool = False
    null_values: tuple[float, ...] = ()
    scale: float = 1.0  # file unit -> table unit for one file, set by _resolve (1 in a loaded spec)


@dataclass(frozen=True)
class Spec:
    """A survey source as declared in catalogdb/sources/<source>.toml."""

    source: str
    table: str
    key: tuple[str, ...]
    formats: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    fits_hdu: int = 1
    ra: str | None = None
    dec: str | None = None
    nan_is_null: bool = True
    skip: tuple[str, ...] = ()
    description: str = ""

    @property
    def not_null(self) -> set[str]:
        """Columns that may not be NULL: the key and NOT NULL columns of the table."""
        table = metadata.tables[self.table]
        return set(self.key) | {c.name for c in table.columns if not c.nullable}


def sources() -> list[str]:
    """The sources with a spec in catalogdb/sources/."""
    return sorted(p.stem for p in SOURCE_SPECS_DIR.glob("*.toml"))


def load_spec(source: str) -> Spec:
    """Read and check catalogdb/sources/<source>.toml against the table it loads."""
    path = SOURCE_SPECS_DIR / f"{source}.toml"
    if not path.exists():
        raise CatalogdbError(f"unknown source {source!r}; expected one of: {', '.join(sources())}")
    raw = tomllib.loads(path.read_text())
    default_nulls = tuple(raw.get("null_values", ()))
    cols = []
    for name, c in raw["columns"].items():
        cols.append(ColumnSpec(name=name, file=c.get("file", name), type=c["type"], unit=c.get("unit"),
                               units_accepted=tuple(c.get("units_accepted", ())),
                               required=bool(c.get("required", False)),
                               null_values=tuple(c.get("null_values", default_nulls))))
    spec = Spec(source=raw["source"], table=raw["table"], key=tuple(raw["key"]), formats=tuple(raw["formats"]),
                columns=tuple(cols), fits_hdu=int(raw.get("fits_hdu", 1)), ra=raw.get("ra"), dec=raw.get("dec"),
                nan_is_null=bool(raw.get("nan_is_null", True)), skip=tuple(raw.get("skip", ())),
                description=raw.get("description", ""))
    _check_spec(spec, path)
    return spec


def _check_spec(spec: Spec, path: Path) -> None:
    table = metadata.tables.get(spec.table)
    if table is None:
        raise CatalogdbError(f"{path}: table {spec.table!r} is not in the schema")
    skip = {s.lower() for s in spec.skip}
    for c in spec.columns:
        if c.name not in table.columns:
            raise CatalogdbError(f"{path}: column {c.name!r} is not a column of {spec.table}")
        if c.type not in SQL_TYPES or not isinstance(table.columns[c.name].type, SQL_TYPES[c.type]):
            raise CatalogdbError(f"{path}: column {c.name!r} has type {c.type!r} but {spec.table}.{c.name} "
                                 f"is {table.columns[c.name].type}")
        if c.file.lower() in skip:
            raise CatalogdbError(f"{path}: column {c.file!r} is both mapped and skipped")
        target = table.columns[c.name].info.get("unit")
        if c.unit is not None and unit_scale(c.unit, target) is None:
            raise CatalogdbError(f"{path}: column {c.name!r} declares unit {c.unit!r}, which is not {target!r} or "
                                 f"a multiple of it ({spec.table}.{c.name} is stored in {target!r})")
    names = {c.name for c in spec.columns}
    for k in (*spec.key, spec.ra, spec.dec):
        if k is not None and k not in names:
            raise CatalogdbError(f"{path}: {k!r} is used as key or coordinate but not mapped")


# --- units --------------------------------------------------------------------------------------------

def _unit(text: str):
    import astropy.units as u

    try:
        return u.Unit(text.strip().strip("'\""), parse_strict="raise")
    except (ValueError, TypeError):
        return None


def units_match(found: str, col: ColumnSpec) -> bool:
    """Whether a file's unit string means the unit the spec expects (same unit, scale 1)."""
    found = found.strip().strip("'\"")
    wanted = [col.unit or "", *col.units_accepted]
    if found.replace(" ", "") in {w.replace(" ", "") for w in wanted}:
        return True
    got = _unit(found)
    for w in wanted:
        expect = _unit(w)
        if got is not None and expect is not None:
            try:
                if got == expect or got.to(expect) == 1.0:
                    return True
            except Exception:  # noqa: BLE001 - inconvertible units just do not match
                continue
    return False


def unit_scale(unit: str | None, target: str | None) -> float | None:
    """The factor taking values in `unit` to `target` when they differ by a pure scale (kpc -> pc: 1000), else None."""
    if unit is None or target is None:
        return 1.0 if unit == target else None
    if unit.strip().strip("'\"").replace(" ", "") == target.replace(" ", ""):
        return 1.0
    got, want = _unit(unit), _unit(target)
    if got is None or want is None:
        return None
    try:
        factor = float(got.to(want))  # astropy refuses offsets (K -> deg_C) and function units (mag, dex) here
    except Exception:  # noqa: BLE001 - inconvertible units have no factor
        return None
    return factor if math.isfinite(factor) and factor > 0 else None


def file_unit_scale(found: str | None, col: ColumnSpec, target: str | None) -> tuple[str, float] | None:
    """(unit the file's values are in, factor to `target`) for a spec column; None when not a pure multiple."""
    # The file's own unit where it states one (a spelling the spec accepts means the spec's unit); where the
    # file states none (CSV, most survey FITS files), the unit the spec declares for the survey.
    if col.unit is None:
        return (found or "", 1.0)  # the spec checks no unit for this column
    if not found or units_match(found, col):
        factor = unit_scale(col.unit, target)
        return None if factor is None else (col.unit, factor)
    found = found.strip().strip("'\"")
    factor = unit_scale(found, target)
    return None if factor is None else (found, factor)


# --- summary --------------------------------------------------------------------------------------------

@dataclass
class IngestSummary:
    """What one ingest did, per file and in total."""

    source: str
    files: list[dict] = field(default_factory=list)
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped_files: int = 0
    reject_file: Path | None = None
    run_id: int | None = None
    unit_conversions: list[dict] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for the CLI's summary table."""
        out = [("source", self.source), ("files", f"{len(self.files)}")]
        if self.skipped_files:
            out.append(("skipped (already ingested)", f"{self.skipped_files}"))
        out += [("rows read", f"{self.read:,}"), ("inserted", f"{self.inserted:,}"),
                ("updated", f"{self.updated:,}"), ("unchanged", f"{self.unchanged:,}"),
                ("rejected", f"{self.rejected:,}")]
        for f in self.files:
            if f.get("reject_file"):
                out.append(("reject file", str(f["reject_file"])))
        for c in self.unit_conversions:
            out.append(("unit conversion", f"{Path(c['file']).name}: {c['column']} {c['from']} -> {c['to']} "
                                           f"(x {c['factor']:g}) into {c['table_column']}"))
        out.append(("run", "none (nothing to do)" if self.run_id is None else f"{self.run_id}"))
        return out


# --- validation -----------------------------------------------------------------------------------------

class _Rejects:
    """Bad rows of one file: raise on the first (abort) or write them to <file>.rejects.csv (skip)."""

    def __init__(self, path: Path, on_error: str, file_columns: list[str]):
        self.path, self.on_error, self.file_columns = path, on_error, file_columns
        self.out = path.with_name(path.name + ".rejects.csv")
        if not os.access(path.parent, os.W_OK):  # a read-only download folder: use the current one
            self.out = Path.cwd() / self.out.name
        self.count = 0
        self._handle = None
        self._writer = None

    def bad(self, items: list[tuple[int, str, str, str]], values: list[dict] | None = None) -> None:
        """Record bad rows: (row, column, value, expectation) and optionally each row's file values."""
        if not items:
            return
        if self.on_error == "abort":
            row, column, value, reason = min(items, key=lambda t: (t[0] < 0, t[0]))
            where = f"row {row}" if row > 0 else "a row"
            what = f"line {value!r} {reason}" if column == "(line)" else f"column {column}: value {value!r} {reason}"
            exc = BadInput(f"{self.path}: {where}, {what} (use --on-error skip to load the other rows)")
            exc.row = row
            raise exc
        if self._writer is None:
            self._handle = open(self.out, "w", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["row", "column", "value", "reason", *self.file_columns])
        for i, (row, column, value, reason) in enumerate(items):
            extra = values[i] if values else {}
            self._writer.writerow([row, column, value, reason, *(extra.get(c, "") for c in self.file_columns)])
        self.count += len(items)

    def close(self) -> Path | None:
        """Close the reject file; its path when any row was rejected."""
        if self._handle:
            self._handle.close()
        return self.out if self.count else None

    def reset(self) -> None:
        """Forget what was written (a file read again from the start)."""
        if self._handle:
            self._handle.close()
            self.out.unlink(missing_ok=True)
        self._handle = self._writer = None
        self.count = 0


def _show(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _slow_convert(arr: pa.Array, col: ColumnSpec) -> tuple[pa.Array, list[tuple[int, str, str]]]:
    """Element-wise conversion for a chunk that pyarrow's cast refused: the bad elements and why."""
    target = ARROW_TYPES[col.type]
    out, bad = [], []
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            out.append(None)
            continue
        try:
            if col.type == "date":
                out.append(v if isinstance(v, date) else date.fromisoformat(str(v).strip()))
            elif col.type == "text":
                out.append(_show(v))
            elif col.type.startswith("int"):
                text = str(v).strip()
                try:
                    n = int(text)
                except ValueError:
                    f = float(text)
                    if not f.is_integer():
                        raise ValueError from None
                    n = int(f)
                lo, hi = INT_RANGE[col.type]
                if not lo <= n <= hi:
                    bad.append((i, _show(v), f"is outside the {col.type} range"))
                    out.append(None)
                    continue
                out.append(n)
            else:
                out.append(float(str(v).strip()) if not isinstance(v, (int, float)) else float(v))
        except (ValueError, OverflowError):
            what = {"date": "a date YYYY-MM-DD", "text": "text"}.get(col.type, f"a number ({col.type})")
            bad.append((i, _show(v), f"is not {what}"))
            out.append(None)
    return pa.array(out, type=target), bad


def _convert(arr: pa.Array, col: ColumnSpec) -> tuple[pa.Array, list[tuple[int, str, str]]]:
    """Cast a file column to the table type (fast path: pyarrow cast) and list values that cannot be."""
    target = ARROW_TYPES[col.type]
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type == target:
        return arr, []
    if pa.types.is_string(arr.type) and col.type != "text":
        # a quoted empty field ("", as astropy writes a masked value) is a missing number too
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    try:
        if col.type == "date" and pa.types.is_string(arr.type):
            return pc.cast(pc.strptime(arr, format="%Y-%m-%d", unit="s"), target), []
        if pa.types.is_boolean(arr.type) and col.type != "text":
            arr = pc.cast(arr, pa.int8())
        return pc.cast(arr, target, safe=True), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _slow_convert(arr, col)


def _validate(chunk: Chunk, spec: Spec, mapped: list[tuple[ColumnSpec, str]], rejects: _Rejects,
              ) -> tuple[pa.Table, np.ndarray]:
    """The chunk as table columns with bad rows removed (skip) or BadInput for the first (abort)."""
    n = chunk.table.num_rows
    good = np.ones(n, dtype=bool)
    problems: list[tuple[int, str, str, str]] = []
    out = {}
    not_null = spec.not_null
    for col, file_name in mapped:
        raw = chunk.table.column(file_name)
        arr, bad = _convert(raw, col)
        for i, value, reason in bad:
            problems.append((i, file_name, value, reason))
            good[i] = False
        is_float = col.type.startswith("float")
        if col.name in (spec.ra, spec.dec):
            lo, hi = (0.0, 360.0) if col.name == spec.ra else (-90.0, 90.0)
            values = arr.to_numpy(zero_copy_only=False)
            if col.scale != 1.0:  # a file in arcsec or rad: the range check is in degrees
                values = values * col.scale
                arr = pa.array(values, mask=np.asarray(arr.is_null()), type=arr.type)
            with np.errstate(invalid="ignore"):
                wrong = ~((values >= lo) & (values <= hi))  # NaN and NULL (as NaN) fail too
            wrong &= good
            what = "right ascension" if col.name == spec.ra else "declination"
            for i in np.flatnonzero(wrong):
                value = raw[int(i)].as_py()
                problems.append((int(i), file_name, _show(value),
                                 f"is not a {what} in [{lo:g}, {hi:g}] deg"))
                good[i] = False
            out[col.name] = arr
            continue
        if is_float:
            values = arr.to_numpy(zero_copy_only=False)
            null = np.isnan(values) if spec.nan_is_null else np.zeros(n, bool)
            if col.null_values:  # sentinels (-9999) are matched in the file's own unit, before any scaling
                null |= np.isin(values, np.array(col.null_values, dtype=values.dtype))
            if col.scale != 1.0:
                with np.errstate(over="ignore"):
                    values = (values.astype(np.float64) * col.scale).astype(values.dtype)
            inf = np.isinf(values) & ~null
            if inf.any():
                for i in np.flatnonzero(inf & good):
                    problems.append((int(i), file_name, _show(raw[int(i)].as_py()), "is not a finite number"))
                good &= ~inf
            if null.any() or col.scale != 1.0:
                arr = pa.array(values, mask=null | np.asarray(arr.is_null()), type=arr.type)
        elif col.null_values and col.type.startswith("int"):
            values = arr.to_numpy(zero_copy_only=False)
            sentinel = [v for v in col.null_values if float(v).is_integer()]
            if sentinel and arr.null_count < len(arr):
                filled = arr.fill_null(0).to_numpy()
                null = np.isin(filled, np.array(sentinel, dtype=np.int64)) | np.asarray(arr.is_null())
                if null.any():
                    arr = pa.array(filled, mask=null, type=arr.type)
        if col.name in not_null and arr.null_count:
            for i in np.flatnonzero(np.asarray(arr.is_null()) & good):
                problems.append((int(i), file_name, _show(raw[int(i)].as_py()),
                                 "is missing; expected a value (key or required column)"))
                good[i] = False
        out[col.name] = arr
    if problems:
        rows = chunk.rows
        items = [(int(rows[i]), c, v, r) for i, c, v, r in problems]
        values = None
        if rejects.on_error == "skip":
            names = [f for _, f in mapped]
            values = [{f: _show(chunk.table.column(f)[i].as_py()) for f in names} for i, *_ in problems]
        rejects.bad(items, values)
    table = pa.table(out)
    if not good.all():
        table = table.filter(pa.array(good))
    return table, good


# --- the database side --------------------------------------------------------------------------------

def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


PG_EPOCH_DAYS = 10_957  # days from 1970-01-01 (arrow date32) to 2000-01-01 (PostgreSQL dates)
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # header, flags 0, no extension
COPY_TRAILER = b"\xff\xff"
_BE = {"int16": ">i2", "int32": ">i4", "int64": ">i8", "float": ">f4", "double": ">f8", "date32[day]": ">i4"}


def encode_binary(table: pa.Table) -> np.ndarray:
    """Rows of an arrow table in PostgreSQL's binary COPY format (without header and trailer)."""
    # Every row is laid out at full width in a structured array (lengths and big-endian values),
    # then the payload bytes of NULLs and the padding of short strings are masked out.
    n = table.num_rows
    fields = [("count", ">i2")]
    fills = []
    mask_parts = []  # (byte offset, width, keep rows (bool n) or per-byte mask (n, width))
    offset = 2
    for j, arr in enumerate(table.columns):
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        valid = ~np.asarray(arr.is_null()) if arr.null_count else None
        fields.append((f"l{j}", ">i4"))
        offset += 4
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            wide = pa.types.is_large_string(arr.type)
            offs = np.frombuffer(arr.buffers()[1], np.int64 if wide else np.int32, n + 1,
                                 offset=arr.offset * (8 if wide else 4)).astype(np.int64)
            length = np.diff(offs)
            if valid is not None:
                length[~valid] = 0
            w = max(int(length.max()) if n else 0, 1)
            block = np.zeros((n, w), np.uint8)
            total = int(length.sum())
            if total:
                data = np.frombuffer(arr.buffers()[2], np.uint8)
                row = np.repeat(np.arange(n), length)
                within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
                block[row, within] = data[offs[:-1][row] + within]
            lens = length.astype(np.int32)
            if valid is not None:
                lens[~valid] = -1
            fields.append((f"v{j}", f"V{w}"))
            fills.append((f"l{j}", lens))
            fills.append((f"v{j}", block.view(f"V{w}").reshape(n)))
            mask_parts.append((offset, w, np.arange(w)[None, :] < length[:, None]))
        else:
            t = str(arr.type)
            be = _BE[t]
            w = np.dtype(be).itemsize
            values = arr.to_numpy(zero_copy_only=False) if valid is None else arr.fill_null(0).to_numpy()
            if t.startswith("date32"):
                values = values.astype("datetime64[D]").astype(np.int64) - PG_EPOCH_DAYS
            fields.append((f"v{j}", be))
            fills.append((f"l{j}", w if valid is None else np.where(valid, w, -1)))
            fills.append((f"v{j}", values))
            if valid is not None:
                mask_parts.append((offset, w, valid))
        offset += w
    rec = np.empty(n, np.dtype(fields))
    rec["count"] = table.num_columns
    for name, values in fills:
        rec[name] = values
    raw = rec.view(np.uint8).reshape(n, offset)
    if not mask_parts:
        return raw.reshape(-1)
    keep = np.ones((n, offset), bool)
    for off, w, m in mask_parts:
        keep[:, off:off + w] = m if m.ndim == 2 else m[:, None]
    return raw[keep]


def _copy(cur: psycopg.Cursor, table: str, columns: list[str], batches) -> int:
    """Binary COPY of arrow batches into `table`; a thread reads and encodes while this one sends."""
    sql = f"copy {table} ({', '.join(_quote(c) for c in columns)}) from stdin (format binary)"
    chunks: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                if batch.num_rows:
                    item = (batch.num_rows, encode_binary(batch))
                    while not stop.is_set():
                        try:
                            chunks.put(item, timeout=0.2)
                            break
                        except queue.Full:
                            continue
            chunks.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the sending thread, which raises it
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    sent = 0
    worker.start()
    try:
        with cur.copy(sql) as copy:
            copy.write(COPY_SIGNATURE)
            while (item := chunks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                copy.write(memoryview(item[1]))
                sent += item[0]
            copy.write(COPY_TRAILER)
    finally:
        stop.set()
        while worker.is_alive():
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()
    return sent


def _already_ingested(conn: sa.Connection, source: str, sha: str, path: str) -> bool:
    """Same checksum ingested into this source, and no later ingest of this path with other content."""
    rows = conn.execute(sa.text(
        "select f->>'sha256', f->>'path' from run r, jsonb_array_elements(r.inputs) f "
        "where r.command = 'ingest' and r.status = 'done' and r.parameters->>'source' = :source "
        "and coalesce((f->>'skipped')::boolean, false) = false "
        "and (f->>'sha256' = :sha or f->>'path' = :path) order by r.run_id desc"),
        {"source": source, "sha": sha, "path": path}).all()
    if not any(r[0] == sha for r in rows):
        return False
    latest_for_path = next((r[0] for r in rows if r[1] == path), sha)
    return latest_for_path == sha


def _dedupe_staging(cur: psycopg.Cursor, spec: Spec, stg: str, rejects: _Rejects, file_of: dict[str, str]) -> int:
    """Duplicate keys inside the file: refuse (abort) or reject every repeat after the first (skip)."""
    key = ", ".join(_quote(k) for k in spec.key)
    cur.execute(f"select exists (select 1 from {stg} group by {key} having count(*) > 1)")
    if not cur.fetchone()[0]:
        return 0
    cur.execute(
        f"select _row, first_row, {key} from (select *, min(_row) over (partition by {key}) as first_row "
        f"from {stg}) d where _row > first_row order by _row")
    dups = cur.fetchall()
    cols = [file_of[k] for k in spec.key]
    items = [(r[0], ",".join(cols), ",".join(_show(v) for v in r[2:]), f"duplicates the key of row {r[1]}")
             for r in dups]
    if rejects.on_error == "abort":
        rejects.bad(items[:1])
    cur.execute(f"select * from {stg} where _row = any(%s) order by _row", ([r[0] for r in dups],))
    names = [d.name for d in cur.description]
    values = [{file_of.get(n, n): _show(v) for n, v in zip(names, rec, strict=True)} for rec in cur.fetchall()]
    rejects.bad(items, values)
    cur.execute(f"delete from {stg} where _row = any(%s)", ([r[0] for r in dups],))
    return len(dups)


def _merge(cur: psycopg.Cursor, spec: Spec, stg: str, columns: list[str]) -> tuple[int, int]:
    """INSERT ... ON CONFLICT DO UPDATE WHERE (row differs): (inserted, updated)."""
    cols = ", ".join(_quote(c) for c in columns)
    key = ", ".join(_quote(k) for k in spec.key)
    rest = [c for c in columns if c not in spec.key]
    if rest:
        sets = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in rest)
        old = ", ".join(f"t.{_quote(c)}" for c in rest)
        new = ", ".join(f"excluded.{_quote(c)}" for c in rest)
        conflict = f"do update set {sets} where row({old}) is distinct from row({new})"
    else:
        conflict = "do nothing"
    cur.execute(
        f"with m as (insert into {_quote(spec.table)} as t ({cols}) select {cols} from {stg} "
        f"on conflict ({key}) {conflict} returning (xmax = 0) as ins) "
        "select count(*) filter (where ins), count(*) filter (where not ins) from m")
    inserted, updated = cur.fetchone()
    return int(inserted), int(updated)


def _resolve(spec: Spec, tf: TableFile) -> tuple[list[tuple[ColumnSpec, str]], list[dict]]:
    """Map spec columns to the file's columns (case-insensitive); check presence, shape, units: (map, conversions)."""
    mapped, missing, conversions = [], [], []
    table = metadata.tables[spec.table]
    for col in spec.columns:
        found = tf.columns.get(col.file.lower())
        if found is None:
            if col.required:
                missing.append(col.file)
            continue
        if found.array:
            raise BadInput(f"{tf.path}: column {found.name} holds an array per row; expected a single "
                           f"{col.type} value for {spec.table}.{col.name}")
        target = table.columns[col.name].info.get("unit")
        scaled = file_unit_scale(found.unit, col, target)
        if scaled is None:
            raise BadInput(f"{tf.path}: column {found.name} has unit {found.unit!r}, which is not {target!r} or a "
                           f"multiple of it; expected {col.unit!r} for {spec.table}.{col.name}")
        if scaled[1] != 1.0 and not col.type.startswith("float"):
            raise BadInput(f"{tf.path}: column {found.name} has unit {found.unit!r}; expected {target!r} for the "
                           f"integer column {spec.table}.{col.name}, which is not rescaled")
        if scaled[1] != 1.0:
            col = replace(col, scale=scaled[1])
            conversions.append({"file": str(tf.path), "column": found.name, "table_column": f"{spec.table}.{col.name}",
                                "from": scaled[0], "to": target, "factor": scaled[1],
                                "unit_from": "file" if found.unit else "spec (the file states no unit)"})
        mapped.append((col, found.name))
    if missing:
        sample = ", ".join(list(c.name for c in tf.columns.values())[:8])
        raise BadInput(f"{tf.path}: missing required column{'s' if len(missing) > 1 else ''} "
                       f"{', '.join(missing)}; expected a {spec.description or spec.source} table "
                       f"(the file has {len(tf.columns)} columns: {sample}{', ...' if len(tf.columns) > 8 else ''})")
    return mapped, conversions


def _load_file(conn: sa.Connection, spec: Spec, tf: TableFile, mapped, on_error: str,
               progress: Progress | None, label: str) -> dict:
    """Read, validate and merge one file inside the caller's transaction; per-file counts."""
    cur = conn.connection.driver_connection.cursor()
    columns = [c.name for c, _ in mapped]
    file_of = {c.name: f for c, f in mapped}
    rejects = _Rejects(tf.path, on_error, [f for _, f in mapped])
    target = _quote(spec.table)

    def batches(with_row: bool):
        read = 0
        tf.invalid_rows.clear()
        reported = 0

        def malformed(upto: float) -> list[tuple[int, str, str, str]]:
            # lines the reader could not split, up to data row `upto`, in file order
            nonlocal reported
            due = [r for r in tf.invalid_rows[reported:] if r.row <= upto]
            reported += len(due)
            return [(r.row, "(line)", r.text, r.reason) for r in due]

        for chunk in tf.chunks([f for _, f in mapped]):
            read += chunk.table.num_rows
            due = malformed(int(chunk.rows[-1]) if len(chunk.rows) else 0)
            try:
                table, good = _validate(chunk, spec, mapped, rejects)
            except BadInput as exc:
                if due and due[0][0] < getattr(exc, "row", math.inf):
                    rejects.bad(due)  # abort: the malformed line comes first in the file
                raise
            rejects.bad(due)
            if with_row:
                table = table.append_column("_row", pa.array(chunk.rows[good]))
            counts["read"] = read + reported
            if progress:
                progress(label, read, tf.total_rows)
            yield table
        rejects.bad(malformed(math.inf))
        counts["read"] = read + reported  # a malformed line is a row read (and rejected)

    counts = {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    cur.execute(f"lock table {target} in share row exclusive mode")
    cur.execute(f"select exists (select 1 from {target})")
    if not cur.fetchone()[0]:
        # Empty target: COPY straight in; a repeated key makes us start over through staging.
        cur.execute("savepoint ingest_direct")
        try:
            n = _copy(cur, target, columns, batches(False))
            cur.execute("release savepoint ingest_direct")
            counts["inserted"] = n
            return {**counts, "rejected": rejects.count, "reject_file": rejects.close(), "path_mode": "direct"}
        except psycopg.errors.UniqueViolation:
            cur.execute("rollback to savepoint ingest_direct")
            rejects.reset()
    stg = "_ingest_staging"
    cur.execute(f"drop table if exists {stg}")
    cur.execute(f"create temp table {stg} (like {target} including defaults) on commit drop")
    cur.execute(f"alter table {stg} add column _row bigint")
    staged = _copy(cur, stg, [*columns, "_row"], batches(True))
    staged -= _dedupe_staging(cur, spec, stg, rejects, file_of)
    if progress:
        progress(f"{label}: merging", 0, None)
    inserted, updated = _merge(cur, spec, stg, columns)
    cur.execute(f"drop table {stg}")
    counts.update(inserted=inserted, updated=updated, unchanged=staged - inserted - updated)
    return {**counts, "rejected": rejects.count, "reject_file": rejects.close(), "path_mode": "staging"}


# --- entry point ----------------------------------------------------------------------------------------

def ingest_files(engine: Engine, source: str, files: list[Path], on_error: str = "abort",
                 progress: Progress | None = None) -> IngestSummary:
    """Load survey files of one source into its table in one transaction; skip files already ingested."""
    if on_error not in ("abort", "skip"):
        raise CatalogdbError(f"on_error must be abort or skip, not {on_error!r}")
    spec = load_spec(source)
    summary = IngestSummary(source=source)
    prepared = []
    for given in files:
        path = Path(given)
        if not path.exists():
            raise BadInput(f"{path}: no such file; expected a {spec.description or source} file")
        if path.is_dir():
            raise BadInput(f"{path}: is a folder; expected a {spec.description or source} file")
        fmt = detect_format(path)
        if fmt not in spec.formats:
            raise BadInput(f"{path}: is a {fmt} file; {source} accepts {', '.join(spec.formats)}")
        # open every file and check its columns before loading any: a bad third file fails fast
        tf = open_table(path.resolve(), fmt, spec.fits_hdu)
        prepared.append((path.resolve(), fmt, tf, *_resolve(spec, tf)))

    inputs: list[dict] = []
    with engine.connect() as conn, conn.begin():
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:k))"), {"k": f"catalogdb.ingest.{spec.table}"})
        for path, fmt, tf, mapped, conversions in prepared:
            if progress:
                progress(f"{path.name}: checksum", 0, None)
            info = {"path": str(path), "format": fmt, "size": path.stat().st_size, "sha256": runs.sha256(path)}
            if _already_ingested(conn, source, info["sha256"], info["path"]):
                summary.skipped_files += 1
                summary.files.append({**info, "skipped": True, "read": 0, "inserted": 0, "updated": 0,
                                      "unchanged": 0, "rejected": 0, "reject_file": None})
                inputs.append({**info, "skipped": True})
                continue
            counts = _load_file(conn, spec, tf, mapped, on_error, progress, path.name)
            counts.pop("path_mode", None)
            entry = {**info, "skipped": False, **counts, "unit_conversions": conversions}
            summary.unit_conversions += conversions
            summary.files.append(entry)
            inputs.append({k: (str(v) if isinstance(v, Path) else v) for k, v in entry.items()})
            for k in ("read", "inserted", "updated", "unchanged", "rejected"):
                setattr(summary, k, getattr(summary, k) + counts[k])
            if counts["reject_file"] and summary.reject_file is None:
                summary.reject_file = counts["reject_file"]
        if summary.skipped_files == len(prepared):
            conn.rollback()
            return summary  # nothing new: nothing written, not even a run row
        totals = {k: getattr(summary, k) for k in ("read", "inserted", "updated", "unchanged", "rejected")}
        totals["skipped_files"] = summary.skipped_files
        run_id = runs.start(conn, "ingest", {"source": source, "on_error": on_error, "table": spec.table,
                                             "unit_conversions": summary.unit_conversions})
        runs.finish(conn, run_id, totals, inputs=json.loads(json.dumps(inputs, default=str)))
        summary.run_id = run_id
    if summary.inserted or summary.updated:
        with engine.connect() as conn:
            conn.execute(sa.text(f"analyze {_quote(spec.table)}"))
            conn.commit()
    return summary


__all__ = ["IngestSummary", "Spec", "file_unit_scale", "ingest_files", "load_spec", "sources", "unit_scale",
           "units_match"]
