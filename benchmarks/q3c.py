"""q3c compat layer against the q3c extension on one PostgreSQL 15 server; prints JSON.

Two databases on one temporary cluster hold the same random all-sky points (1M in `a`, 2M in `b`): one
with `create extension q3c`, one with catalogdb's compat functions. Measured in each: CREATE INDEX on
q3c_ang2ipix(ra, dec), ang2ipix per call, the 3" join a x b (timed --repeat times, extension and compat
alternately, best kept; compat once more serially), and 0.5 deg cones on b.

    .venv/bin/python benchmarks/q3c.py [--n1 1000000] [--n2 2000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import psycopg

from catalogdb.db.cluster import start_cluster
from catalogdb.db.q3c import compat_sql


def _load(conn: psycopg.Connection, table: str, ra: np.ndarray, dec: np.ndarray) -> None:
    conn.execute(f"create table {table} (id bigint, ra float8, dec float8)")
    with conn.cursor() as cur, cur.copy(f"copy {table} from stdin") as cp:
        for i in range(ra.size):
            cp.write_row((i, float(ra[i]), float(dec[i])))


def _timed(conn: psycopg.Connection, sql: str) -> tuple[float, object]:
    t = time.perf_counter()
    cur = conn.execute(sql)
    row = cur.fetchone() if cur.description else None
    return time.perf_counter() - t, row[0] if row else None


def main() -> None:
    """Run the benchmark and print the figures as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=1_000_000)
    ap.add_argument("--n2", type=int, default=2_000_000)
    ap.add_argument("--cones", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2, help="join timings per mode, alternating; the best is kept")
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    ra1, dec1 = rng.uniform(0, 360, args.n1), np.degrees(np.arcsin(rng.uniform(-1, 1, args.n1)))
    ra2, dec2 = rng.uniform(0, 360, args.n2), np.degrees(np.arcsin(rng.uniform(-1, 1, args.n2)))
    cones = list(
        zip(rng.uniform(0, 360, args.cones), np.degrees(np.arcsin(rng.uniform(-1, 1, args.cones))), strict=True)
    )
    cluster = start_cluster()
    join = "select count(*) from a, b where q3c_join(a.ra, a.dec, b.ra, b.dec, 3.0 / 3600)"
    out: dict[str, object] = {"n1": args.n1, "n2": args.n2, "radius_arcsec": 3.0, "server": None}
    try:
        admin = psycopg.connect(cluster.url().replace("postgresql+psycopg", "postgresql"), autocommit=True)
        out["server"] = admin.execute("select version()").fetchone()[0]
        conns: dict[str, psycopg.Connection] = {}
        for mode in ("extension", "compat"):
            admin.execute(f"create database bench_{mode}")
            url = cluster.url(f"bench_{mode}").replace("postgresql+psycopg", "postgresql")
            conn = conns[mode] = psycopg.connect(url, autocommit=True)
            if mode == "extension":
                conn.execute("create extension q3c")
            else:
                conn.execute(compat_sql().replace("@extschema@", "public"))
            _load(conn, "a", ra1, dec1)
            _load(conn, "b", ra2, dec2)
            conn.execute("vacuum analyze a")
            res: dict[str, object] = {}
            res["create_index_s"], _ = _timed(conn, "create index b_q3c on b (q3c_ang2ipix(ra, dec))")
            conn.execute("vacuum analyze b")
            base, _ = _timed(conn, "select sum(ra + dec) from b")
            t, _ = _timed(conn, "select sum(q3c_ang2ipix(ra, dec)) from b")
            res["ang2ipix_us_per_call"] = (t - base) / args.n2 * 1e6
            plan = "\n".join(r[0] for r in conn.execute("explain " + join).fetchall())
            res["join_workers_planned"] = (
                int(plan.split("Workers Planned: ")[1].split()[0]) if ("Workers Planned" in plan) else 0
            )
            res["join_runs_s"] = []
            out[mode] = res
        # the machine may be shared: time the joins alternately, extension then compat, and keep the best
        for _ in range(args.repeat):
            for mode, conn in conns.items():
                t, pairs = _timed(conn, join)
                out[mode]["join_runs_s"].append(t)
                out[mode]["join_pairs"] = pairs
        conn = conns["compat"]
        conn.execute("set max_parallel_workers_per_gather = 0")
        out["compat"]["join_serial_s"], _ = _timed(conn, join)
        conn.execute("reset max_parallel_workers_per_gather")
        for mode, conn in conns.items():
            res = out[mode]
            res["join_s"] = min(res["join_runs_s"])
            times, counts = [], 0
            for cra, cdec in cones:
                t, c = _timed(
                    conn,
                    f"select count(*) from b where q3c_radial_query(ra, dec, {float(cra)!r}, {float(cdec)!r}, 0.5)",
                )
                times.append(t)
                counts += c
            res["cone_0p5deg_ms_median"] = float(np.median(times) * 1e3)
            res["cone_rows_total"] = counts
            conn.close()
        admin.close()
    finally:
        cluster.stop()
    ext, cmp = out["extension"], out["compat"]
    out["join_ratio_compat_over_extension"] = cmp["join_s"] / ext["join_s"]
    out["join_pairs_equal"] = cmp["join_pairs"] == ext["join_pairs"]
    out["cone_ratio_compat_over_extension"] = cmp["cone_0p5deg_ms_median"] / ext["cone_0p5deg_ms_median"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
