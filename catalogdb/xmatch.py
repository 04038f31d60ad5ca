"""`catalogdb xmatch`: LAMOST x APOGEE and LAMOST x Gaia pairs by q3c_join, and the Gaia zero point.

The pair search runs inside PostgreSQL, split by obsid over several connections so every server
core works; the pairs are then swapped into the xmatch tables in one transaction.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs

# One entry per crossmatch table: the catalogue joined to LAMOST and the columns that name its row.
PARTNERS = {
    "xmatch_lamost_apogee": ("apogee_star", ["apogee_id", "telescope", "field"]),
    "xmatch_lamost_gaia": ("gaia_source", ["source_id"]),
}


@dataclass
class XmatchSummary:
    """What a crossmatch run found."""

    run_id: int
    pairs: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    zeropoints: int = 0
    zeropoints_invalid: int = 0

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for the CLI."""
        out = []
        for table in self.pairs:
            out.append((table, f"{self.pairs[table]:,} pairs, {self.matched[table]:,} obsids matched "
                               f"({self.seconds[table]:.1f} s)"))
        out.append(("parallax zero points", f"{self.zeropoints:,} ({self.zeropoints_invalid:,} outside validity)"))
        out.append(("run", str(self.run_id)))
        return out


def _pair_sql(table: str, stage: str, jobs: int) -> str:
    partner, keys = PARTNERS[table]
    key_list = ", ".join(f"p.{k}" for k in keys)
    # Each obsid lies in one part, so the rank is final here and the swap below is a plain copy.
    return (
        f"INSERT INTO {stage} SELECT *, row_number() OVER (PARTITION BY obsid ORDER BY sep_arcsec, "
        f"{', '.join(keys)}) FROM (SELECT l.obsid, {key_list}, q3c_dist(l.ra, l.dec, p.ra, p.dec) * 3600 "
        f"AS sep_arcsec FROM lamost_star l JOIN {partner} p ON q3c_join(l.ra, l.dec, p.ra, p.dec, :radius) "
        f"WHERE l.obsid % {jobs} = :part) pairs"
    )


def match(engine: Engine, table: str, radius_arcsec: float, run_id: int, jobs: int) -> tuple[int, int]:
    """Replace `table` with every LAMOST pair within the radius; returns (pairs, matched obsids)."""
    partner, keys = PARTNERS[table]
    stage = f"{table}_stage_{run_id}"
    key_cols = ", ".join(keys)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE UNLOGGED TABLE {stage} AS SELECT obsid, {key_cols}, sep_arcsec, rank "
                             f"FROM {table} WITH NO DATA"))
    try:
        sql = sa.text(_pair_sql(table, stage, jobs))

        def part(k: int) -> None:
            with engine.begin() as conn:
                conn.execute(sql, {"radius": radius_arcsec / 3600.0, "part": k})

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(part, range(jobs)))
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {table}"))
            conn.execute(sa.text(
                f"INSERT INTO {table} (obsid, {key_cols}, sep_arcsec, rank, best, run_id) "
                f"SELECT obsid, {key_cols}, sep_arcsec, rank, rank = 1, :run_id FROM {stage}"), {"run_id": run_id})
            pairs, matched = conn.execute(sa.text(f"SELECT count(*), count(DISTINCT obsid) FROM {table}")).one()
            conn.execute(sa.text(f"ANALYZE {table}"))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {stage}"))
    return pairs, matched


def zeropoints(engine: Engine, chunk: int = 200_000) -> tuple[int, int]:
    """Lindegren et al. (2021) zero point for the matched Gaia rows; NULL and zpt_valid = false outside range."""
    from zero_point import zpt

    zpt.load_tables()
    done = invalid = 0
    with engine.begin() as conn:
        rows = conn.execute(sa.text(
            "SELECT source_id, phot_g_mean_mag, nu_eff_used_in_astrometry, pseudocolour, ecl_lat, "
            "astrometric_params_solved FROM gaia_source "
            "WHERE source_id IN (SELECT source_id FROM xmatch_lamost_gaia)")).all()
        cur = conn.connection.driver_connection.cursor()
        cur.execute("CREATE TEMP TABLE zpt_stage (source_id bigint, zp real, ok boolean) ON COMMIT DROP")
        for start in range(0, len(rows), chunk):
            block = np.array(rows[start:start + chunk], dtype=object)
            values = [np.asarray(block[:, i], dtype=float) for i in range(1, 6)]
            solved = np.nan_to_num(values[4], nan=0).astype(int)
            usable = np.isin(solved, (31, 95)) & np.isfinite(values[0]) & np.isfinite(values[3])
            zp = np.full(len(block), np.nan)
            if usable.any():
                # _warnings=False: outside 6 < G < 21 or the colour range the package returns NaN, not an
                # extrapolation; we store that as NULL with zpt_valid = false.
                zp[usable] = zpt.get_zpt(values[0][usable], values[1][usable], values[2][usable],
                                         values[3][usable], solved[usable], _warnings=False)
            ok = np.isfinite(zp)
            with cur.copy("COPY zpt_stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "float4", "bool"])
                for sid, value, good in zip(block[:, 0], zp, ok, strict=True):
                    copy.write_row((int(sid), float(value) if good else None, bool(good)))
            done += len(block)
            invalid += int((~ok).sum())
        cur.execute("UPDATE gaia_source g SET parallax_zeropoint = z.zp, zpt_valid = z.ok "
                    "FROM zpt_stage z WHERE g.source_id = z.source_id")
    return done, invalid


def run_xmatch(engine: Engine, apogee_radius: float = 1.0, gaia_radius: float = 3.0,
               jobs: int | None = None) -> XmatchSummary:
    """Crossmatch LAMOST with APOGEE and Gaia (radii in arcsec) and compute the Gaia zero points."""
    jobs = jobs or max(os.cpu_count() or 1, 1)
    radii = {"xmatch_lamost_apogee": apogee_radius, "xmatch_lamost_gaia": gaia_radius}
    with engine.begin() as conn:
        run_id = runs.start(conn, "xmatch", {"apogee_radius_arcsec": apogee_radius,
                                             "gaia_radius_arcsec": gaia_radius, "jobs": jobs})
    summary = XmatchSummary(run_id=run_id)
    status = "failed"
    try:
        for table, radius in radii.items():
            t0 = time.perf_counter()
            summary.pairs[table], summary.matched[table] = match(engine, table, radius, run_id, jobs)
            summary.seconds[table] = time.perf_counter() - t0
        summary.zeropoints, summary.zeropoints_invalid = zeropoints(engine)
        status = "done"
    finally:
        with engine.begin() as conn:
            runs.finish(conn, run_id, {"pairs": summary.pairs, "matched": summary.matched,
                                       "zeropoints": summary.zeropoints,
                                       "zeropoints_invalid": summary.zeropoints_invalid}, status=status)
    return summary
