"""TAP cone-search latency: 16 concurrent clients on a 521,424-row final catalogue (mock rows).

Builds a fresh database on an embedded server of its own (q3c compat functions; --server pg15 uses a
system PostgreSQL 15 with the real q3c extension), fills lamost_star, spectrum, gaia_source,
gaia_distance, xmatch_lamost_gaia and cnn_prediction with N synthetic stars spread over the LAMOST
sky (dec -10..60 deg) plus a 'predict' run, so final_catalog is the real view with its joins. Starts
`catalogdb serve` in a subprocess, then C client threads each run Q sync ADQL cone searches
(SELECT * ... CONTAINS(POINT, CIRCLE) = 1, radius uniform in 1..10 arcmin, random centres) over
keep-alive HTTP. Baseline in the same run: the same cones as the translated SQL through psycopg from
C threads, i.e. what the database alone costs. The TAP clients run twice, against a server whose pool resets
connections by ROLLBACK (psycopg then deallocates the prepared cone search: the old behaviour) and by
COMMIT (each connection keeps it: the default). Prints one JSON object (latencies in ms).

    python benchmarks/tap.py [--rows 521424] [--clients 16] [--queries 40] [--server embedded|pg15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from catalogdb import paper  # noqa: E402 - after the path set-up

COLUMNS = "*"


def fill(engine: sa.Engine, n: int) -> float:
    """N synthetic stars in every table final_catalog is made from, published; returns seconds taken."""
    from catalogdb.publish import publish_rows

    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("select setseed(0.5)"))
        conn.execute(sa.text(f"""
            insert into lamost_star (obsid, ra, dec, snrg, snrr, teff, teff_err, logg, logg_err, feh, feh_err,
                                     rv, rv_err, class, gaia_source_id)
            select 100000000000 + i, 360 * random(),
                   degrees(asin(sin(radians(-10.0)) + (sin(radians(60.0)) - sin(radians(-10.0))) * random())),
                   10 + 90 * random(), 15 + 90 * random(), 4800 + 1700 * random(), 50, 3.5 + 1.2 * random(),
                   0.1, -1 + 1.3 * random(), 0.05, -50 + 100 * random(), 5, 'STAR', 1000000000000000000 + i
            from generate_series(0, {n - 1}) i"""))
        conn.execute(sa.text("""
            insert into gaia_source (source_id, ra, dec, parallax, parallax_error, parallax_over_error,
                                     phot_g_mean_mag, bp_rp, parallax_zeropoint, zpt_valid)
            select gaia_source_id, ra + 1e-5, dec, 0.5 + 2 * random(), 0.05, 20, 12 + 5 * random(),
                   0.6 + 0.6 * random(), -0.02, random() > 0.1
            from lamost_star"""))
        conn.execute(sa.text("""
            insert into gaia_distance (source_id, r_med_geo, r_lo_geo, r_hi_geo)
            select source_id, 1000 / parallax, 900 / parallax, 1100 / parallax from gaia_source"""))
        conn.execute(sa.text("""
            insert into xmatch_lamost_gaia select obsid, gaia_source_id, 0.03, 1, true, 1 from lamost_star"""))
        conn.execute(sa.text("""
            insert into spectrum (obsid, flux, flag, snrg, path, checksum, run_id)
            select obsid, '\\x00'::bytea, 0, snrg, 'mock.fits', 'x', 1 from lamost_star"""))
        conn.execute(sa.text("""
            insert into cnn_prediction
            select 'bench', obsid, teff, 40, logg, 0.05, feh, 0.03, 4 + random(), 0.1, 0.8, 0.02, 0.3, 'bp_rp',
                   1000 + 3000 * random(), 900, 1000, 1100, -8000, 100, 50, 8100, 2
            from lamost_star"""))
        conn.execute(sa.text("insert into cnn_model (model_id, path, config, training_rows, training_checksum, "
                             "code_version, metrics, run_id) values ('bench', '-', '{}', 0, '-', 'bench', '{}', 1)"))
        publish_rows(conn, "bench", None, None)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("lamost_star", "gaia_source", "gaia_distance", "xmatch_lamost_gaia", "spectrum",
                      "cnn_prediction"):
            conn.execute(sa.text(f"vacuum analyze {table}"))
    return time.perf_counter() - t


def cones(n: int, seed: int) -> list[tuple[float, float, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        dec = np.degrees(np.arcsin(np.sin(np.radians(-10)) + (np.sin(np.radians(60)) - np.sin(np.radians(-10)))
                                   * rng.random()))
        out.append((360 * rng.random(), float(dec), rng.uniform(1, 10) / 60))
    return out


def adql(ra: float, dec: float, r: float) -> str:
    return (f"SELECT {COLUMNS} FROM final_catalog WHERE CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {ra:.6f}, {dec:.6f}, {r:.6f})) = 1")


def summary(latencies: list[float], errors: int, wall: float, rows: int) -> dict:
    ms = np.array(latencies or [float("nan")]) * 1000
    return {"queries": len(latencies), "errors": errors, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(ms.mean()), 2), "queries_per_s": round(len(latencies) / wall, 1),
            "mean_rows": round(rows / max(len(latencies), 1), 2)}


def run_clients(clients: int, work, per_client: list[list]) -> dict:
    latencies: list[float] = []
    errors = [0]
    rows = [0]
    shown = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(i: int) -> None:
        state = work.setup()
        barrier.wait()
        for item in per_client[i]:
            t = time.perf_counter()
            try:
                n = work.run(state, item)
                ok = True
            except Exception as exc:  # noqa: BLE001 - an error is counted, not fatal
                ok = False
                with lock:
                    shown[0] += 1
                    if shown[0] <= 3:
                        print(f"error: {exc}"[:300], file=sys.stderr)
            dt = time.perf_counter() - t
            with lock:
                if ok:
                    latencies.append(dt)
                    rows[0] += n
                else:
                    errors[0] += 1
        work.teardown(state)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return summary(latencies, errors[0], time.perf_counter() - t, rows[0])


class TapWork:
    def __init__(self, url: str):
        self.url = url

    def setup(self):
        import requests

        return requests.Session()

    def run(self, session, cone) -> int:
        resp = session.post(f"{self.url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql(*cone)},
                            timeout=60)
        body = resp.text
        if resp.status_code != 200 or 'value="ERROR"' in body:
            raise RuntimeError(f"HTTP {resp.status_code}: {body[-300:]}")
        return body.count("<TR>")

    def teardown(self, session) -> None:
        session.close()


class SqlWork:
    def __init__(self, url: str):
        from catalogdb.tap.adql import translate

        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.translate = translate

    def setup(self):
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute("SET plan_cache_mode = force_custom_plan")  # as the TAP service's connections
        return conn

    def run(self, conn, cone) -> int:
        t = self.translate(adql(*cone), limit=100_001)
        return len(conn.execute(t.sql, t.params, prepare=t.params is not None).fetchall())

    def teardown(self, conn) -> None:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, home: Path, pool_reset: str) -> tuple[subprocess.Popen, str]:
    """`catalogdb serve` in a subprocess, once it answers; returns it and its TAP URL."""
    import requests

    port = free_port()
    env = {**os.environ, "CATALOGDB_URL": url, "CATALOGDB_HOME": str(home), "CATALOGDB_TAP_POOL_RESET": pool_reset}
    proc = subprocess.Popen([sys.executable, "-m", "catalogdb.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    tap_url = f"http://127.0.0.1:{port}/tap"
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(f"{tap_url}/availability", timeout=2).ok:
                return proc, tap_url
        except requests.ConnectionError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("TAP server did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=paper.TARGETS_PREPROCESSED)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--queries", type=int, default=40, help="cone searches per client")
    parser.add_argument("--server", choices=["embedded", "pg15"], default="embedded")
    args = parser.parse_args()

    from catalogdb.config import Settings
    from catalogdb.db import admin
    from catalogdb.db.server import server_url

    home = Path(tempfile.mkdtemp(prefix="catalogdb-bench-tap-"))
    cluster = None
    server_proc = None
    try:
        if args.server == "pg15":
            from catalogdb.db.cluster import start_cluster

            cluster = start_cluster()
            base = cluster.url()
        else:
            base = server_url(Settings(url=None, home=home))
        admin_engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(sa.text("create database bench_tap"))
        admin_engine.dispose()
        url = sa.engine.make_url(base).set(database="bench_tap").render_as_string(hide_password=False)
        engine = sa.create_engine(url)
        mode = admin.init(engine, "auto" if args.server == "pg15" else "compat")
        fill_s = fill(engine, args.rows)
        with engine.connect() as conn:
            nrows = conn.execute(sa.text("select count(*) from final_catalog")).scalar()
        engine.dispose()

        import requests

        work = [cones(args.queries, seed=i) for i in range(args.clients)]
        baseline = run_clients(args.clients, SqlWork(url), work)
        tap = {}
        # Before (pool reset by ROLLBACK: psycopg deallocates the prepared cone search, every request prepares
        # again) and after (reset by COMMIT: each connection keeps it), one server after the other.
        for reset in ("rollback", "commit"):
            server_proc, tap_url = start_server(url, home, reset)
            for cone in cones(20, seed=999):  # connection pools, plan caches
                TapWork(tap_url).run(requests.Session(), cone)
            tap[reset] = run_clients(args.clients, TapWork(tap_url), work)
            server_proc.terminate()
            server_proc.wait(timeout=30)
            server_proc = None
        print(json.dumps({
            "benchmark": "tap cone search",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "server": args.server, "q3c": mode, "final_catalog_rows": nrows, "fill_s": round(fill_s, 1),
            "clients": args.clients, "queries_per_client": args.queries, "radius_arcmin": [1, 10],
            "columns": "all 44 of final_catalog" if COLUMNS == "*" else COLUMNS,
            "tap_sync_votable": tap["commit"],
            "tap_sync_votable_pool_reset_rollback": tap["rollback"],
            "baseline_sql_psycopg": baseline,
            "goal": {"p95_ms": 50, "errors": 0},
        }, indent=2))
    finally:
        if server_proc is not None:
            server_proc.terminate()
            server_proc.wait(timeout=30)
        if cluster is not None:
            cluster.stop()
        else:
            from catalogdb.db.server import stop_embedded

            try:
                stop_embedded(Settings(url=None, home=home))
            except Exception:  # noqa: BLE001 - best effort
                pass
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
