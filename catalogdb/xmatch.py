"""`catalogdb xmatch`: LAMOST x APOGEE and LAMOST x Gaia pairs by q3c_join, and the Gaia zero point.

The pair search runs inside PostgreSQL, split by obsid over several connections so every server
core works; the pairs are then swapped into the xmatch tables in one transaction.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs

# APOGEE EXTRATARG bit 4, DUPLICATE: "Non-primary (not highest S/N) duplicate" of an APOGEE_ID observed in
# another field (the apogee package's ExtratargBitMask; SDSS DR17 bitmask EXTRATARG).
APOGEE_DUPLICATE = 1 << 4

# One entry per crossmatch table: the catalogue joined to LAMOST, the columns that name its row, and the
# expression (over the partner row p) that demotes a row in the ranking whatever its separation.
PARTNERS = {
    "xmatch_lamost_apogee": ("apogee_star", ["apogee_id", "telescope", "field"],
                             f"coalesce(p.extratarg & {APOGEE_DUPLICATE} <> 0, false)"),
    "xmatch_lamost_gaia": ("gaia_source", ["source_id"], "false"),
}


@dataclass
class XmatchSummary:
    """What a crossmatch run found."""

    run_id: int
    pairs: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    zeropoints: int = 0
    zeropoints_clamped: int = 0
    zeropoints_invalid: int = 0  # rows the package gives no zero point for (stored as NULL)

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for the CLI."""
        out = []
        for table in self.pairs:
            out.append((table, f"{self.pairs[table]:,} pairs, {self.matched[table]:,} obsids matched "
                               f"({self.seconds[table]:.1f} s)"))
        out.append(("parallax zero points", f"{self.zeropoints:,} ({self.zeropoints_clamped:,} clamped outside the "
                                            f"calibrated range, {self.zeropoints_invalid:,} without a value)"))
        out.append(("run", str(self.run_id)))
        return out


def ranked_pairs_sql(table: str, stage: str, pairs: str) -> str:
    """INSERT into `stage` the ranked pairs of `pairs`: a FROM clause joining lamost_star l to the partner p."""
    partner, keys, demoted = PARTNERS[table]
    key_list = ", ".join(f"p.{k}" for k in keys)
    # Rank: demoted rows (APOGEE duplicates) last, then by separation, then by the key so ties are stable.
    # Each obsid lies in one part, so the rank is final here and the swap below is a plain copy.
    return (
        f"INSERT INTO {stage} SELECT obsid, {', '.join(keys)}, sep_arcsec, row_number() OVER (PARTITION BY obsid "
        f"ORDER BY demoted, sep_arcsec, {', '.join(keys)}) FROM (SELECT l.obsid, {key_list}, "
        f"q3c_dist(l.ra, l.dec, p.ra, p.dec) * 3600 AS sep_arcsec, {demoted} AS demoted "
        f"FROM {pairs.format(partner=partner)}) pairs"
    )


def replace_pairs(engine: Engine, table: str, run_id: int, fill: Callable[[str], None]) -> tuple[int, int]:
    """Replace `table` with the pairs `fill(stage)` ranks into a staging table; returns (pairs, matched obsids)."""
    _, keys, _ = PARTNERS[table]
    stage = f"{table}_stage_{run_id}"
    key_cols = ", ".join(keys)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE UNLOGGED TABLE {stage} AS SELECT obsid, {key_cols}, sep_arcsec, rank "
                             f"FROM {table} WITH NO DATA"))
    try:
        fill(stage)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {table}"))
            conn.execute(sa.text(
                f"INSERT INTO {table} (obsid, {key_cols}, sep_arcsec, rank, best, run_id) "
                f"SELECT obsid, {key_cols}, sep_arcsec, rank, rank = 1, :run_id FROM {stage} ORDER BY obsid, rank"),
                {"run_id": run_id})  # in key order: the primary key's B-tree grows at its right edge
            pairs, matched = conn.execute(sa.text(f"SELECT count(*), count(DISTINCT obsid) FROM {table}")).one()
            conn.execute(sa.text(f"ANALYZE {table}"))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {stage}"))
    return pairs, matched


def match(engine: Engine, table: str, radius_arcsec: float, run_id: int, jobs: int) -> tuple[int, int]:
    """Replace `table` with every LAMOST pair within the radius; returns (pairs, matched obsids)."""

    def fill(stage: str) -> None:
        sql = sa.text(ranked_pairs_sql(table, stage, "lamost_star l JOIN {partner} p ON q3c_join(l.ra, l.dec, p.ra, "
                                              f"p.dec, :radius) WHERE l.obsid % {jobs} = :part"))

        def part(k: int) -> None:
            with engine.begin() as conn:
                # q3c_join's selectivity hack makes the planner's cost estimates astronomical, which sets off
                # a JIT compilation costing more than the expressions it would speed up
                conn.execute(sa.text("SET LOCAL jit = off"))
                conn.execute(sql, {"radius": radius_arcsec / 3600.0, "part": k})

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(part, range(jobs)))

    return replace_pairs(engine, table, run_id, fill)


# gaiadr3-zeropoint (zero_point.zpt.get_zpt) calibrates 6 < G < 21, 1.1 < nu_eff < 1.9 (5-p) and
# 1.24 < pseudocolour < 1.72 (6-p), the limits themselves outside. Beyond them it still returns a value
# (with a warning): G is held at 6 or 21, the 6-p pseudocolour terms saturate at their limits, the 5-p nu_eff
# terms continue linearly. It gives no value (NaN) only where an input it needs is missing.
ZPT_G_RANGE = (6.0, 21.0)
ZPT_NU_EFF_RANGE = (1.1, 1.9)
ZPT_PSEUDOCOLOUR_RANGE = (1.24, 1.72)


def zpt_outside_range(g: np.ndarray, nu_eff: np.ndarray, pseudocolour: np.ndarray,
                      solved: np.ndarray) -> np.ndarray:
    """Whether gaiadr3-zeropoint takes each row as outside its calibrated range (its own tests, limits included)."""
    def out(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (x <= lo_hi[0]) | (x >= lo_hi[1])

    return out(g, ZPT_G_RANGE) | ((solved == 31) & out(nu_eff, ZPT_NU_EFF_RANGE)) | (
        (solved == 95) & out(pseudocolour, ZPT_PSEUDOCOLOUR_RANGE))


def zpt_values(g: np.ndarray, nu_eff: np.ndarray, pseudocolour: np.ndarray, ecl_lat: np.ndarray,
               solved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The package's zero point (mas; NaN where it gives none) and whether it was clamped, for 5-p and 6-p rows."""
    from zero_point import zpt

    zpt.load_tables()
    zp = np.full(len(g), np.nan)
    usable = np.isin(solved, (31, 95))  # the package refuses any other solution type
    if usable.any():
        with warnings.catch_warnings():
            # its out-of-range warning is what zpt_clamped records, row by row
            warnings.simplefilter("ignore", UserWarning)
            zp[usable] = zpt.get_zpt(g[usable], nu_eff[usable], pseudocolour[usable], ecl_lat[usable],
                                     solved[usable])
    clamped = usable & np.isfinite(zp) & zpt_outside_range(g, nu_eff, pseudocolour, solved)
    return zp, clamped


def zeropoints(engine: Engine, chunk: int = 200_000) -> tuple[int, int, int]:
    """Lindegren et al. (2021) zero point for the matched Gaia rows: (rows, of them clamped, of them without one)."""
    done = clamped_rows = missing = 0
    with engine.begin() as conn:
        rows = conn.execute(sa.text(
            "SELECT source_id, phot_g_mean_mag, nu_eff_used_in_astrometry, pseudocolour, ecl_lat, "
            "astrometric_params_solved FROM gaia_source "
            "WHERE source_id IN (SELECT source_id FROM xmatch_lamost_gaia)")).all()
        cur = conn.connection.driver_connection.cursor()
        cur.execute("CREATE TEMP TABLE zpt_stage (source_id bigint, zp real, valid boolean, clamped boolean) "
                    "ON COMMIT DROP")
        for start in range(0, len(rows), chunk):
            block = np.array(rows[start:start + chunk], dtype=object)
            g, nu, pc, lat = (np.asarray(block[:, i], dtype=float) for i in range(1, 5))
            solved = np.nan_to_num(np.asarray(block[:, 5], dtype=float), nan=0).astype(int)
            zp, clamped = zpt_values(g, nu, pc, lat, solved)
            has = np.isfinite(zp)
            with cur.copy("COPY zpt_stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "float4", "bool", "bool"])
                for sid, value, ok, cl in zip(block[:, 0], zp, has, clamped, strict=True):
                    # zpt_valid: a value inside the calibrated range; zpt_clamped: NULL where no value
                    copy.write_row((int(sid), float(value) if ok else None, bool(ok and not cl),
                                    bool(cl) if ok else None))
            done += len(block)
            clamped_rows += int(clamped.sum())
            missing += int((~has).sum())
        cur.execute("UPDATE gaia_source g SET parallax_zeropoint = z.zp, zpt_valid = z.valid, "
                    "zpt_clamped = z.clamped FROM zpt_stage z WHERE g.source_id = z.source_id")
    return done, clamped_rows, missing


def run_xmatch(engine: Engine, apogee_radius: float = 1.0, gaia_radius: float = 3.0,
               jobs: int | None = None, gaia_hats: str | None = None, dask: str | None = None) -> XmatchSummary:
    """Crossmatch LAMOST with APOGEE and Gaia (radii in arcsec) and compute the Gaia zero points.

    With `gaia_hats` (a HATS Gaia catalogue) the Gaia side runs through LSDB on Dask (`dask`: a scheduler
    address, local[:N], or None for a local one) and only the matched Gaia rows are loaded.
    """
    jobs = jobs or max(os.cpu_count() or 1, 1)
    radii = {"xmatch_lamost_apogee": apogee_radius, "xmatch_lamost_gaia": gaia_radius}
    parameters = {"apogee_radius_arcsec": apogee_radius, "gaia_radius_arcsec": gaia_radius, "jobs": jobs,
                  **({"gaia_hats": gaia_hats, "dask": dask} if gaia_hats else {})}
    with runs.recorded(engine, "xmatch", parameters) as run:
        summary = XmatchSummary(run_id=run.run_id)

        def counts() -> dict:
            return {"pairs": summary.pairs, "matched": summary.matched, "zeropoints": summary.zeropoints,
                    "zeropoints_clamped": summary.zeropoints_clamped,
                    "zeropoints_invalid": summary.zeropoints_invalid}

        run.row_counts = counts()  # kept current: a failed run records how far it got
        for table, radius in radii.items():
            t0 = time.perf_counter()
            if table == "xmatch_lamost_gaia" and gaia_hats:
                from catalogdb.xmatch_hats import match_gaia_hats

                summary.pairs[table], summary.matched[table] = match_gaia_hats(engine, gaia_hats, radius,
                                                                               run.run_id, dask)
            else:
                summary.pairs[table], summary.matched[table] = match(engine, table, radius, run.run_id, jobs)
            summary.seconds[table] = time.perf_counter() - t0
        summary.zeropoints, summary.zeropoints_clamped, summary.zeropoints_invalid = zeropoints(engine)
        run.row_counts = counts()
    return summary
