"""Parquet: one row group per batch, with each column's unit, UCD and description as field metadata."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from catalogdb.writers.fields import Field


class _Sink(io.RawIOBase):
    """A write-only file that keeps what is written until it is taken, so the file streams out in chunks."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def parquet_rows(fields: list[Field], batches: Iterable[list[tuple]], name: str) -> Iterator[bytes]:
    """A Parquet file, as chunks: a row group per batch, the metadata in the schema and its fields."""
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
        {"relation": name, "columns": columns_meta})})
    text = [i for i, f in enumerate(fields) if f.datatype not in types]
    sink = _Sink()
    with pq.ParquetWriter(sink, arrow_schema) as writer:
        for batch in batches:
            if not batch:
                continue
            cols = list(zip(*batch, strict=True))
            for i in text:
                cols[i] = [None if v is None else (v if isinstance(v, str) else str(v)) for v in cols[i]]
            writer.write_batch(pa.record_batch([pa.array(c, type=fld.type) for c, fld in
                                                zip(cols, arrow_fields, strict=True)], schema=arrow_schema))
            yield sink.take()
    yield sink.take()
