"""Ingest speed against `psql \\copy` on the same server in the same run, and peak memory on a large catalogue.

Prints JSON:
- gaia: rows/s of `catalogdb ingest gaia-dr3` for a 1-million-row Gaia-like CSV and the same rows as FITS,
  and of `psql \\copy` of that CSV into the same (emptied) table; ratio = ingest rows/s / psql rows/s.
  Each load goes into an empty gaia_source (with its primary key and q3c index); best of `--repeat`.
  The ingest time is end to end: checksum, read, validate, COPY, run row and ANALYZE.
- gaia_second_file: a second file of `--second-rows` new Gaia rows (keys interleaved with the first file's, so
  no key-range test can tell them apart) into gaia_source holding the first `--rows` rows, against
  `psql \\copy` of the same CSV into the same non-empty table; best of `--repeat`.
- gaia_merge: re-ingesting a changed copy of the CSV into the full table (staging + ON CONFLICT merge).
- lamost: peak resident memory (ru_maxrss) of a process ingesting a synthetic LAMOST DR9 FITS catalogue
  of each size in `--lamost-rows`, with its rows/s.

Usage: python benchmarks/ingest.py [--rows 1000000] [--lamost-rows 1000000,7000000] [--server auto|pg15|embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalogdb.config import Settings  # noqa: E402
from catalogdb.db.schema import metadata  # noqa: E402
from catalogdb.ingest.files import ingest_files  # noqa: E402
from catalogdb.ingest.spec import load_spec  # noqa: E402
from catalogdb.ingest.validate import ARROW_TYPES  # noqa: E402


def psql_binary() -> str:
    """psql from PostgreSQL 15's bin folder, or the one on PATH."""
    candidate = Path("/usr/lib/postgresql/15/bin/psql")
    return str(candidate) if candidate.exists() else (shutil.which("psql") or "psql")


def start_server(kind: str, workdir: Path):
    """(server URL, q3c mode, stop function, description)."""
    if kind in ("auto", "pg15"):
        try:
            from catalogdb.db.cluster import start_cluster

            cluster = start_cluster()
            return cluster.url(), "extension", cluster.stop, "system PostgreSQL 15 with the q3c extension"
        except Exception as exc:  # noqa: BLE001 - fall back to the embedded server
            if kind == "pg15":
                raise
            print(f"(no PostgreSQL 15: {exc}; using the embedded server)", file=sys.stderr)
    from catalogdb.db.server import server_url, stop_embedded

    cfg = Settings(url=None, home=workdir / "home")
    return server_url(cfg), "compat", lambda: stop_embedded(cfg), "embedded PostgreSQL (q3c compat functions)"


def new_database(server: str, q3c_mode: str) -> sa.Engine:
    """A fresh database with the catalogdb schema."""
    name = f"bench_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    admin.dispose()
    engine = sa.create_engine(sa.engine.make_url(server).set(database=name))
    from catalogdb.db import admin as db_admin

    db_admin.init(engine, q3c_mode)
    return engine


def libpq_dsn(engine: sa.Engine) -> str:
    """The engine's database as a libpq URI for psql."""
    url = engine.url
    host = url.host or url.query.get("host", "")
    parts = [f"dbname={url.database}", f"user={url.username or 'postgres'}"]
    if host:
        parts.append(f"host={host}")
    if url.port:
        parts.append(f"port={url.port}")
    if url.password:
        parts.append(f"password={url.password}")
    return " ".join(parts)


# --- data ---------------------------------------------------------------------------------------------

def gaia_table(n: int, seed: int = 1) -> pa.Table:
    """Gaia-like rows: the gaia-dr3 spec's columns, realistic values and NULL fractions."""
    rng = np.random.default_rng(seed)
    table = metadata.tables["gaia_source"]
    cols = {}
    for spec_col in load_spec("gaia-dr3").columns:
        name, kind = spec_col.name, spec_col.type
        if name == "source_id":
            cols[name] = pa.array(rng.permutation(n).astype(np.int64) * (1 << 20) + 4_295_806_720)
        elif name == "ra":
            cols[name] = pa.array(rng.uniform(0, 360, n))
        elif name in ("dec", "ecl_lat"):
            cols[name] = pa.array(np.rad2deg(np.arcsin(rng.uniform(-1, 1, n))))
        elif kind == "int16":
            cols[name] = pa.array(rng.choice(np.array([3, 31, 95], np.int16), n, p=[0.1, 0.5, 0.4]))
        else:
            values = rng.normal(10, 3, n).astype(np.float32 if kind == "float32" else np.float64)
            holes = rng.random(n) < (0.35 if "gspphot" in name else 0.1)
            cols[name] = pa.array(values, mask=holes, type=ARROW_TYPES[kind])
        assert name in table.columns
    return pa.table(cols)


def write_fits(table: pa.Table, path: Path) -> None:
    """The same rows as a FITS binary table (NULL floats as NaN, as the Gaia archive writes them)."""
    from astropy.table import Table

    out = Table()
    for name in table.column_names:
        arr = table.column(name)
        out[name] = arr.fill_null(np.nan).to_numpy() if pa.types.is_floating(arr.type) else arr.to_numpy()
    out.write(path, format="fits", overwrite=True)


LAMOST_FALLBACK_DTYPE = np.dtype([
    ("obsid", ">i8"), ("uid", "S11"), ("designation", "S19"), ("obsdate", "S10"), ("lmjd", ">i4"),
    ("planid", "S14"), ("spid", ">i2"), ("fiberid", ">i2"), ("ra", ">f8"), ("dec", ">f8"), ("ra_obs", ">f8"),
    ("dec_obs", ">f8"), ("snru", ">f4"), ("snrg", ">f4"), ("snrr", ">f4"), ("snri", ">f4"), ("snrz", ">f4"),
    ("class", "S6"), ("subclass", "S4"), ("z", ">f8"), ("z_err", ">f8"), ("fibermask", ">i4"),
    ("teff", ">f4"), ("teff_err", ">f4"), ("logg", ">f4"), ("logg_err", ">f4"), ("feh", ">f4"), ("feh_err", ">f4"),
    ("rv", ">f4"), ("rv_err", ">f4"), ("alpha_m", ">f4"), ("alpha_m_err", ">f4"), ("gaia_source_id", ">i8"),
    ("gaia_g_mean_mag", ">f4"),
])


def write_lamost_fits(path: Path, n: int, chunk: int = 500_000, seed: int = 2) -> None:
    """A synthetic LAMOST DR9 LRS stellar catalogue of n rows, streamed to disk in bounded memory."""
    from astropy.io import fits

    try:
        from catalogdb.mock.lamost import LAMOST_DTYPE as dtype
    except ImportError:
        dtype = LAMOST_FALLBACK_DTYPE
    be = np.dtype([(name, dtype[name].newbyteorder(">") if dtype[name].kind in "iuf" else dtype[name])
                   for name in dtype.names])
    hdu = fits.BinTableHDU(np.zeros(1, be))
    header = hdu.header
    header["NAXIS2"] = n
    for i, name in enumerate(be.names, 1):
        unit = {"ra": "deg", "dec": "deg", "teff": "K", "logg": "dex", "feh": "dex", "rv": "km/s"}.get(name)
        if unit:
            header[f"TUNIT{i}"] = unit
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
        out.write(header.tostring().encode("ascii"))
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            rec = np.zeros(m, be)
            rec["obsid"] = 100_000_000 + start + np.arange(m)
            rec["uid"] = np.char.add(b"U", np.char.zfill((start + np.arange(m)).astype("S10"), 10))
            rec["designation"] = b"J000000.00+000000.0"
            rec["obsdate"] = b"2018-11-03"
            rec["planid"] = b"GAC080N37M1"
            rec["class"], rec["subclass"] = b"STAR", b"G2"
            rec["ra"] = rng.uniform(0, 360, m)
            rec["dec"] = rng.uniform(-10, 90, m)
            for name in be.names:
                if be[name].kind == "f" and name not in ("ra", "dec"):
                    rec[name] = rng.normal(50, 10, m)
                elif be[name].kind == "i" and name not in ("obsid",):
                    rec[name] = rng.integers(0, 250, m)
            rec["teff"][rng.random(m) < 0.01] = -9999
            rec["gaia_source_id"] = np.where(rng.random(m) < 0.05, -9999, rec["obsid"] * 7)
            out.write(rec.tobytes())
        size = out.tell()
        out.write(b"\0" * (-size % 2880))


# --- measurements -----------------------------------------------------------------------------------------

def reset(engine: sa.Engine, table: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"truncate {table}; delete from run"))
        conn.execute(sa.text("checkpoint"))


def refill(engine: sa.Engine, csv_path: Path, columns: list[str]) -> None:
    """gaia_source holding exactly the rows of `csv_path`, checkpointed."""
    reset(engine, "gaia_source")
    time_psql(engine, csv_path, columns)
    with engine.begin() as conn:
        conn.execute(sa.text("analyze gaia_source; checkpoint"))


def time_psql(engine: sa.Engine, csv_path: Path, columns: list[str]) -> float:
    cmd = [psql_binary(), libpq_dsn(engine), "-v", "ON_ERROR_STOP=1", "-c",
           f"\\copy gaia_source ({', '.join(columns)}) from '{csv_path}' with (format csv, header true)"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def time_ingest(engine: sa.Engine, source: str, path: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    summary = ingest_files(engine, source, [path])
    return time.perf_counter() - t0, {"read": summary.read, "inserted": summary.inserted,
                                      "updated": summary.updated, "unchanged": summary.unchanged}


MEMORY_CHILD = """
import json, resource, sys, time
from pathlib import Path
import sqlalchemy as sa
from catalogdb.ingest.files import ingest_files
engine = sa.create_engine(sys.argv[1])
t0 = time.perf_counter()
s = ingest_files(engine, "lamost-stellar", [Path(sys.argv[2])])
elapsed = time.perf_counter() - t0
print(json.dumps({"rows": s.inserted, "seconds": round(elapsed, 1), "rows_per_s": round(s.inserted / elapsed),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--second-rows", type=int, default=300_000)
    parser.add_argument("--lamost-rows", default="1000000,7000000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--server", choices=["auto", "pg15", "embedded"], default="auto")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="catalogdb-bench-"))
    server, q3c_mode, stop, described = start_server(args.server, work)
    result: dict = {"server": described, "rows": args.rows, "cpus": os.cpu_count()}
    try:
        engine = new_database(server, q3c_mode)
        t0 = time.perf_counter()
        table = gaia_table(args.rows)
        csv_path, fits_path = work / "gaia_like.csv", work / "gaia_like.fits"
        pcsv.write_csv(table, csv_path)
        write_fits(table, fits_path)
        result["generate_s"] = round(time.perf_counter() - t0, 1)
        columns = table.column_names
        times: dict[str, list[float]] = {"psql_copy_csv": [], "ingest_csv": [], "ingest_fits": []}
        for _ in range(args.repeat):  # interleaved, so a busy machine slows all of them alike
            reset(engine, "gaia_source")
            times["psql_copy_csv"].append(time_psql(engine, csv_path, columns))
            reset(engine, "gaia_source")
            seconds, counts = time_ingest(engine, "gaia-dr3", csv_path)
            assert counts["inserted"] == args.rows, counts
            times["ingest_csv"].append(seconds)
            reset(engine, "gaia_source")
            seconds, counts = time_ingest(engine, "gaia-dr3", fits_path)
            assert counts["inserted"] == args.rows, counts
            times["ingest_fits"].append(seconds)
        best = {k: min(v) for k, v in times.items()}
        psql_rate = args.rows / best["psql_copy_csv"]
        result["gaia"] = {
            **{f"{k}_rows_per_s": round(args.rows / v) for k, v in best.items()},
            **{f"{k}_seconds": [round(x, 2) for x in v] for k, v in times.items()},
            "ratio_csv_vs_psql": round(args.rows / best["ingest_csv"] / psql_rate, 2),
            "ratio_fits_vs_psql": round(args.rows / best["ingest_fits"] / psql_rate, 2),
            "goal": ">= 0.9",
        }
        # a second file of new rows into the full table: psql \copy and ingest, each after the same refill
        second = gaia_table(args.second_rows, seed=3)
        second = second.set_column(0, "source_id", pa.array(
            second.column("source_id").to_numpy() + (1 << 19)))  # between the first file's keys
        second_path = work / "gaia_second.csv"
        pcsv.write_csv(second, second_path)
        times2: dict[str, list[float]] = {"psql_copy_csv": [], "ingest_csv": []}
        for _ in range(args.repeat):
            refill(engine, csv_path, columns)
            times2["psql_copy_csv"].append(time_psql(engine, second_path, columns))
            refill(engine, csv_path, columns)
            seconds, counts = time_ingest(engine, "gaia-dr3", second_path)
            assert counts["inserted"] == args.second_rows, counts
            times2["ingest_csv"].append(seconds)
        best2 = {k: min(v) for k, v in times2.items()}
        result["gaia_second_file"] = {
            "table_rows": args.rows, "file_rows": args.second_rows,
            **{f"{k}_rows_per_s": round(args.second_rows / v) for k, v in best2.items()},
            **{f"{k}_seconds": [round(x, 2) for x in v] for k, v in times2.items()},
            "ratio_csv_vs_psql": round(best2["psql_copy_csv"] / best2["ingest_csv"], 2),
            "goal": ">= 0.9",
        }
        second_path.unlink()
        # merge path: the table is full (both files); a copy of the first with 1% of rows changed
        par = table.column("parallax").to_numpy(zero_copy_only=False).copy()
        par[: args.rows // 100] += 1.0
        changed = table.set_column(table.column_names.index("parallax"), "parallax", pa.array(par))
        changed_path = work / "gaia_like_changed.csv"
        pcsv.write_csv(changed, changed_path)
        seconds, counts = time_ingest(engine, "gaia-dr3", changed_path)
        result["gaia_merge"] = {"rows_per_s": round(args.rows / seconds), "seconds": round(seconds, 2), **counts}
        engine.dispose()
        for path in (csv_path, fits_path, changed_path):
            path.unlink()

        result["lamost"] = []
        for n in [int(x) for x in args.lamost_rows.split(",") if x]:
            path = work / f"lamost_{n}.fits"
            t0 = time.perf_counter()
            write_lamost_fits(path, n)
            gen = time.perf_counter() - t0
            eng = new_database(server, q3c_mode)
            url = eng.url.render_as_string(hide_password=False)
            eng.dispose()
            child = subprocess.run([sys.executable, "-c", MEMORY_CHILD, url, str(path)], capture_output=True,
                                   text=True, check=True, cwd=ROOT)
            entry = json.loads(child.stdout.strip().splitlines()[-1])
            entry.update(file_mib=round(path.stat().st_size / 2**20), generate_s=round(gen, 1))
            result["lamost"].append(entry)
            path.unlink()
    finally:
        stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
