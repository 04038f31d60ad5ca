"""`catalogdb xmatch` against a single q3c_join query and astropy's search_around_sky; prints JSON.

1M LAMOST-like and 2M Gaia-like positions (half of the Gaia rows are counterparts of LAMOST rows within
0.3", the rest field stars) on one temporary PostgreSQL 15 cluster, in a database with the q3c
extension and one with catalogdb's compat functions. Measured in the same run, r = 3":
  - xmatch: catalogdb.xmatch.match (the obsid-split pair search on several connections + the swap),
  - single query: one connection, INSERT ... SELECT ... q3c_join (what a user would type),
  - astropy: SkyCoord.search_around_sky on arrays already in memory (and the fetch from PostgreSQL).

    .venv/bin/python benchmarks/xmatch.py [--n1 1000000] [--n2 2000000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json

import astropy.units as u
import numpy as np
import sqlalchemy as sa
from astropy.coordinates import SkyCoord
from steps import timed  # benchmarks/, the folder of this script

from catalogdb.db import admin
from catalogdb.db.cluster import start_cluster
from catalogdb.xmatch import match


def positions(n1: int, n2: int) -> tuple[np.ndarray, ...]:
    """LAMOST-like points on dec > -10 and Gaia-like points: n1 counterparts plus n2 - n1 field stars."""
    rng = np.random.default_rng(5)
    ra1 = rng.uniform(0, 360, n1)
    dec1 = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-10)), 1, n1)))
    offset = rng.normal(0, 0.3 / 3600, (2, n1))
    ra2 = np.concatenate([(ra1 + offset[0] / np.cos(np.radians(dec1))) % 360, rng.uniform(0, 360, n2 - n1)])
    dec2 = np.concatenate([np.clip(dec1 + offset[1], -90, 90),
                           np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-10)), 1, n2 - n1)))])
    return ra1, dec1, ra2, dec2


def load(engine: sa.Engine, table: str, key: str, ra: np.ndarray, dec: np.ndarray) -> None:
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(f"copy {table} ({key}, ra, dec) from stdin (format binary)") as copy:
            copy.set_types(["int8", "float8", "float8"])
            for i in range(ra.size):
                copy.write_row((i + 1, float(ra[i]), float(dec[i])))
        conn.execute(sa.text(f"analyze {table}"))


def single_query(engine: sa.Engine) -> int:
    """The crossmatch as one statement on one connection; returns the pair count."""
    with engine.begin() as conn:
        conn.execute(sa.text("create temp table single as select l.obsid, g.source_id, "
                             "q3c_dist(l.ra, l.dec, g.ra, g.dec) * 3600 as sep from lamost_star l "
                             "join gaia_source g on q3c_join(l.ra, l.dec, g.ra, g.dec, 3 / 3600.0)"))
        return conn.execute(sa.text("select count(*) from single")).scalar_one()


def fetch_positions(engine: sa.Engine) -> int:
    """What astropy would first need: every position out of PostgreSQL."""
    with engine.connect() as conn:
        return len(conn.execute(sa.text("select ra, dec from lamost_star union all "
                                        "select ra, dec from gaia_source")).all())


def measure(engine: sa.Engine, jobs: int, astropy_seconds: float) -> dict:
    """xmatch and the single query on one database."""
    seconds, (pairs, _) = timed(lambda: match(engine, "xmatch_lamost_gaia", 3.0, run_id=0, jobs=jobs))
    single_seconds, single_pairs = timed(lambda: single_query(engine))
    return {"xmatch_seconds": round(seconds, 2), "xmatch_pairs": pairs,
            "single_query_seconds": round(single_seconds, 2), "single_query_pairs": single_pairs,
            "xmatch_over_astropy": round(seconds / astropy_seconds, 2),
            "xmatch_over_single_query": round(seconds / single_seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=1_000_000)
    ap.add_argument("--n2", type=int, default=2_000_000)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    ra1, dec1, ra2, dec2 = positions(args.n1, args.n2)
    out: dict = {"n_lamost": args.n1, "n_gaia": args.n2, "radius_arcsec": 3.0, "jobs": args.jobs}

    a, b = SkyCoord(ra1 * u.deg, dec1 * u.deg), SkyCoord(ra2 * u.deg, dec2 * u.deg)
    seconds, pairs = timed(lambda: len(a.search_around_sky(b, 3 * u.arcsec)[0]))
    out["astropy"] = {"seconds": round(seconds, 2), "pairs": pairs}

    cluster = start_cluster()
    try:
        base = sa.create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        for mode in ("extension", "compat"):
            with base.connect() as conn:
                conn.execute(sa.text(f"create database xm_{mode}"))
            engine = sa.create_engine(cluster.url(f"xm_{mode}"))
            admin.init(engine, mode)
            load(engine, "lamost_star", "obsid", ra1, dec1)
            load(engine, "gaia_source", "source_id", ra2, dec2)
            if mode == "extension":
                out["astropy"]["fetch_from_postgres_seconds"] = round(timed(lambda e=engine: fetch_positions(e))[0], 2)
            out[mode] = measure(engine, args.jobs, out["astropy"]["seconds"])
            engine.dispose()
        base.dispose()
    finally:
        cluster.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
