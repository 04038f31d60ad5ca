"""Validation: a file's columns against the spec (presence, shape, units), then each chunk's values."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalogdb.db.schema import metadata
from catalogdb.errors import BadInput
from catalogdb.ingest.rejects import Rejects, show
from catalogdb.ingest.units import file_unit_scale
from catalogdb.readers import Chunk, TableFile

if TYPE_CHECKING:
    from catalogdb.ingest.spec import ColumnSpec, Spec

ARROW_TYPES = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
               "float64": pa.float64(), "text": pa.string(), "date": pa.date32()}
INT_RANGE = {"int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def resolve(spec: Spec, tf: TableFile) -> tuple[list[tuple[ColumnSpec, str]], list[dict]]:
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
                out.append(show(v))
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
                    bad.append((i, show(v), f"is outside the {col.type} range"))
                    out.append(None)
                    continue
                out.append(n)
            else:
                out.append(float(str(v).strip()) if not isinstance(v, (int, float)) else float(v))
        except (ValueError, OverflowError):
            what = {"date": "a date YYYY-MM-DD", "text": "text"}.get(col.type, f"a number ({col.type})")
            bad.append((i, show(v), f"is not {what}"))
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


def validate(chunk: Chunk, spec: Spec, mapped: list[tuple[ColumnSpec, str]], rejects: Rejects,
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
                problems.append((int(i), file_name, show(value),
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
                    problems.append((int(i), file_name, show(raw[int(i)].as_py()), "is not a finite number"))
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
                problems.append((int(i), file_name, show(raw[int(i)].as_py()),
                                 "is missing; expected a value (key or required column)"))
                good[i] = False
        out[col.name] = arr
    if problems:
        rows = chunk.rows
        items = [(int(rows[i]), c, v, r) for i, c, v, r in problems]
        values = None
        if rejects.on_error == "skip":
            names = [f for _, f in mapped]
            values = [{f: show(chunk.table.column(f)[i].as_py()) for f in names} for i, *_ in problems]
        rejects.bad(items, values)
    table = pa.table(out)
    if not good.all():
        table = table.filter(pa.array(good))
    return table, good
