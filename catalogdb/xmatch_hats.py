"""`catalogdb xmatch --gaia-hats`: LAMOST x Gaia through LSDB over a HATS Gaia catalogue, on Dask.

Gaia DR3 (1.8 billion rows) is never loaded whole: LSDB crossmatches lamost_star (read from PostgreSQL)
with the HATS catalogue partition by partition on the Dask workers, using the catalogue's margin cache
for pairs across partition edges. Only the Gaia rows that match go into gaia_source, through the
ordinary `gaia-dr3` ingest (catalogdb/sources/gaia-dr3.toml: its validation, units and run row), and
the pairs are ranked in PostgreSQL by xmatch.py's own SQL (q3c_dist separation, best-match rule, ties),
so the table is the one the q3c crossmatch gives.

The catalogue's columns are the Gaia archive's gaia_source names (source_id, ra, dec, parallax, ...,
as in the published Gaia DR3 HATS catalogue); they map to gaia_source as the gaia-dr3 spec says, by
name, case-insensitively. Columns the spec does not name are not read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.errors import BadInput
from catalogdb.ingest.spec import load_spec
from catalogdb.xmatch import ranked_pairs_sql, replace_pairs

GAIA_SOURCE = "gaia-dr3"
N_NEIGHBORS = 8  # Gaia rows kept per LAMOST star at first; raised while some star has that many in the radius
LAMOST_CHUNK = 500_000


def gaia_columns(available: list[str]) -> dict[str, str]:
    """gaia_source column -> the catalogue's column, for each spec column it has; BadInput if a required one lacks."""
    spec = load_spec(GAIA_SOURCE)
    by_lower = {name.lower(): name for name in available}
    found = {c.name: by_lower[c.file.lower()] for c in spec.columns if c.file.lower() in by_lower}
    missing = [c.file for c in spec.columns if c.required and c.name not in found]
    if missing:
        raise BadInput(f"the HATS Gaia catalogue lacks the column(s) {', '.join(missing)} "
                       f"(expected Gaia archive gaia_source names, see catalogdb/sources/{GAIA_SOURCE}.toml)")
    return found


def lamost_frame(engine: Engine) -> pd.DataFrame:
    """obsid, ra, dec of every lamost_star row."""
    with engine.connect() as conn:
        parts = list(pd.read_sql(sa.text("SELECT obsid, ra, dec FROM lamost_star ORDER BY obsid"), conn,
                                 chunksize=LAMOST_CHUNK))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["obsid", "ra", "dec"])


def open_gaia(path: str, radius_arcsec: float):
    """The HATS Gaia catalogue with only the spec's columns, and the map of those columns; checks its margin."""
    import lsdb

    try:
        catalog = lsdb.open_catalog(path)
    except Exception as exc:  # noqa: BLE001 - lsdb raises many kinds for a path that is not a catalogue
        raise BadInput(f"--gaia-hats {path}: not a HATS catalogue LSDB can open ({exc})") from None
    columns = gaia_columns(list(catalog.all_columns))
    margin = catalog.margin.hc_structure.catalog_info.margin_threshold if catalog.margin is not None else None
    if margin is None or margin < radius_arcsec:
        raise BadInput(f"--gaia-hats {path}: needs a margin cache of at least {radius_arcsec} arcsec "
                       f"(it has {'none' if margin is None else f'{margin} arcsec'}), or pairs across "
                       "HEALPix partition edges would be lost")
    return lsdb.open_catalog(path, columns=list(columns.values())), columns


def crossmatch(lamost: pd.DataFrame, gaia, radius_arcsec: float) -> pd.DataFrame:
    """Every (LAMOST row, Gaia row) pair within the radius: obsid, then the Gaia columns (suffix _gaia)."""
    import lsdb

    left = lsdb.from_dataframe(lamost, ra_column="ra", dec_column="dec", margin_threshold=None)
    neighbours = N_NEIGHBORS
    while True:
        pairs = left.crossmatch(gaia, radius_arcsec=radius_arcsec, n_neighbors=neighbours,
                                suffixes=("_lamost", "_gaia"), suffix_method="all_columns",
                                require_right_margin=True, log_changes=False).compute()
        if pairs.empty or pairs.groupby("obsid_lamost").size().max() < neighbours:
            return pd.DataFrame(pairs)  # fewer than n_neighbors everywhere: none was cut off
        neighbours *= 4


def match_gaia_hats(engine: Engine, path: str, radius_arcsec: float, run_id: int,
                    dask: str | None = None) -> tuple[int, int]:
    """Replace xmatch_lamost_gaia with the LSDB pairs, loading the matched Gaia rows; returns (pairs, obsids)."""
    from catalogdb import dask_workers
    from catalogdb.ingest.files import ingest_files

    gaia, columns = open_gaia(path, radius_arcsec)
    lamost = lamost_frame(engine)
    if lamost.empty:
        raise BadInput("lamost_star is empty: ingest lamost-stellar before crossmatching")
    with dask_workers.client(dask or "local"):  # LSDB computes on the client made here
        pairs = crossmatch(lamost, gaia, radius_arcsec)
    if pairs.empty:  # no Gaia row to load, and the pair table is emptied
        return replace_pairs(engine, "xmatch_lamost_gaia", run_id, lambda stage: None)
    matched = pairs[[f"{columns[c]}_gaia" for c in columns]].drop_duplicates(f"{columns['source_id']}_gaia")
    matched.columns = list(columns)
    with tempfile.TemporaryDirectory(prefix="catalogdb-gaia-hats-") as tmp:
        # named by the run, so the ingest run's input says which crossmatch it came from
        rows_file = Path(tmp) / f"gaia_hats_matched_run{run_id}.parquet"
        matched.to_parquet(rows_file, index=False)
        ingest_files(engine, GAIA_SOURCE, [rows_file])
    obsid = pairs["obsid_lamost"].to_numpy(np.int64)
    source_id = pairs[f"{columns['source_id']}_gaia"].to_numpy(np.int64)

    def fill(stage: str) -> None:
        with engine.begin() as conn:
            cur = conn.connection.driver_connection.cursor()
            cur.execute("CREATE TEMP TABLE xmatch_hats_pairs (obsid bigint, source_id bigint) ON COMMIT DROP")
            with cur.copy("COPY xmatch_hats_pairs FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int8"])
                for row in zip(obsid.tolist(), source_id.tolist(), strict=True):
                    copy.write_row(row)
            cur.execute(ranked_pairs_sql("xmatch_lamost_gaia", stage, "xmatch_hats_pairs x JOIN lamost_star l "
                                         "ON l.obsid = x.obsid JOIN {partner} p ON p.source_id = x.source_id"))

    return replace_pairs(engine, "xmatch_lamost_gaia", run_id, fill)
