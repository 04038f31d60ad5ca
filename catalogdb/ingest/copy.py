"""PostgreSQL binary COPY: arrow tables encoded with numpy, sent while a thread reads and encodes the next."""

from __future__ import annotations

import numpy as np
import psycopg
import pyarrow as pa

from catalogdb.pipeline import pipeline


def quote(name: str) -> str:
    """An SQL identifier, double-quoted."""
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


def copy_batches(cur: psycopg.Cursor, table: str, columns: list[str], batches) -> int:
    """Binary COPY of arrow batches into `table`; a thread reads and encodes while this one sends."""
    sql = f"copy {table} ({', '.join(quote(c) for c in columns)}) from stdin (format binary)"
    encoded = ((batch.num_rows, encode_binary(batch)) for batch in batches if batch.num_rows)
    sent = 0
    with pipeline(encoded, maxsize=3, name="ingest-reader") as chunks, cur.copy(sql) as copy:
        copy.write(COPY_SIGNATURE)
        for rows, data in chunks:
            copy.write(memoryview(data))
            sent += rows
        copy.write(COPY_TRAILER)
    return sent
