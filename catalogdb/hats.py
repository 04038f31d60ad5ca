"""HATS catalogues (HEALPix-partitioned Parquet that LSDB reads): `export --format hats` and the mock's Gaia.

A catalogue is written by hats-import from Parquet files, which it reads in row groups, so memory stays
bounded whatever the table's size: export streams the table into one Parquet file first (export.py's
writer, with the columns' units, UCDs and descriptions as field metadata), and hats-import keeps that
schema (`use_schema_file`) in every partition file and in dataset/_common_metadata. Each catalogue is a
HATS collection: the catalogue and a margin cache of MARGIN_ARCSEC, so LSDB can crossmatch against it
at any radius up to that without losing pairs across partition edges. The folder appears whole or not at
all: it is built beside its destination and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
from sqlalchemy.engine import Engine

from catalogdb.errors import BadInput

MARGIN_ARCSEC = 10.0  # as the published Gaia DR3 HATS catalogue's margin
PIXEL_ROWS = 1_000_000  # hats-import's default: rows per HEALPix partition at most


def write_hats(parquet: Path, out: Path, ra: str = "ra", dec: str = "dec", dask: str | None = None,
               pixel_rows: int = PIXEL_ROWS) -> Path:
    """Write the rows of one Parquet file as the HATS collection `out` (catalogue + margin); returns `out`."""
    from hats_import import CollectionArguments, pipeline_with_client

    from catalogdb import dask_workers

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"{out}: already exists; a HATS catalogue is written into a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        args = (CollectionArguments(output_path=work, output_artifact_name=out.name, progress_bar=False,
                                    resume=False, tmp_dir=work / "tmp")
                .catalog(input_file_list=[parquet], file_reader="parquet", use_schema_file=parquet,
                         ra_column=ra, dec_column=dec, pixel_threshold=pixel_rows)
                .add_margin(margin_threshold=MARGIN_ARCSEC, is_default=True))
        # threads, not processes: the import is I/O and Arrow work, and needs no pickled interpreter state
        with dask_workers.client(dask or "local:1", processes=False) as client:
            pipeline_with_client(args, client)
        if out.exists():
            out.rmdir()
        os.replace(work / out.name, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def export_hats(engine: Engine, out: Path, relation: str = "final_catalog", where: str | None = None,
                dask: str | None = None) -> int:
    """Write `relation` (rows matching `where`) as a HATS collection with units and descriptions; returns rows."""
    from catalogdb.export import export

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.rows.", dir=out.parent) as tmp:
        rows_file = Path(tmp) / f"{relation.split('.')[-1]}.parquet"
        rows = export(engine, rows_file, relation, "parquet", where)
        if rows == 0:
            raise BadInput(f"{relation}: no rows to write as HATS{f' where {where}' if where else ''}")
        write_hats(rows_file, out, dask=dask)
    return rows


def csv_to_hats(csv: Path, out: Path, types: dict[str, pa.DataType], dask: str | None = None) -> Path:
    """A CSV file with ra and dec columns and these column types (the mock's Gaia table) as the HATS collection."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix=".hats-input.", dir=Path(out).parent) as tmp:
        parquet = Path(tmp) / (Path(csv).name.split(".")[0] + ".parquet")
        # streams: one block of rows at a time
        with pacsv.open_csv(csv, convert_options=pacsv.ConvertOptions(column_types=types)) as reader:
            with pq.ParquetWriter(parquet, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
        return write_hats(parquet, out, dask=dask)
