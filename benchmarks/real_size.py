"""Ingest of survey files at their real sizes and with their real column sets, and its peak memory.

Writes an APOGEE DR17 allStar (all 234 columns of the DR17 data model, multi-dimensional ones included,
733,901 rows) and a LAMOST DR9 v2.0 LRS stellar catalogue (all its columns, 7,000,000 rows), streamed to
disk in chunks (catalogdb/mock/real_layout.py declares the layouts and says where they come from), then
ingests each into a fresh database on the embedded server in a child process and reads the child's peak
resident memory from os.wait4, so neither the writer nor the server is counted.

Prints JSON: per file rows, columns, file size, write time, ingest wall time, rows/s and peak RSS, with
the goal (peak < 2 GB whatever the file size) and whether it held.

Usage: python benchmarks/real_size.py [--allstar-rows 733901] [--lamost-rows 7000000] [--out DIR] [--keep]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import new_database, start_server  # noqa: E402

from catalogdb.mock import real_layout  # noqa: E402

GOAL_BYTES = 2 * 10**9

CHILD = """
import json, sys, time
from pathlib import Path
import sqlalchemy as sa
from catalogdb.ingest.files import ingest_files
engine = sa.create_engine(sys.argv[1])
t0 = time.perf_counter()
s = ingest_files(engine, sys.argv[2], [Path(sys.argv[3])])
print(json.dumps({"read": s.read, "inserted": s.inserted, "rejected": s.rejected,
                  "seconds": time.perf_counter() - t0}))
"""


def ingest_in_child(url: str, source: str, path: Path) -> dict:
    """Run one ingest in a child process: its summary, wall time and peak RSS (bytes, from wait4's rusage)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # output to files, not pipes: the child is reaped by wait4 (for its rusage), not by communicate()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, url, source, str(path)], cwd=ROOT, stdout=out,
                                stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise RuntimeError(f"ingest of {path} failed (exit {code}):\n{stderr[-4000:]}")
    entry = json.loads(stdout.strip().splitlines()[-1])
    return {**entry, "wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * 1024}  # Linux: ru_maxrss in KiB


def measure(server: str, q3c_mode: str, source: str, path: Path, written: dict) -> dict:
    """Ingest one written file into a fresh database and report it."""
    engine = new_database(server, q3c_mode)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    got = ingest_in_child(url, source, path)
    assert got["inserted"] == written["rows"] and got["rejected"] == 0, got
    return {
        "file": path.name, "source": source, "rows": written["rows"], "columns": written["columns"],
        "file_bytes": written["bytes"], "file_gib": round(written["bytes"] / 2**30, 2),
        "write_s": written["seconds"], "ingest_wall_s": round(got["wall_s"], 1),
        "ingest_in_process_s": round(got["seconds"], 1), "rows_per_s": round(written["rows"] / got["wall_s"]),
        "peak_rss_bytes": got["peak_rss_bytes"], "peak_rss_mib": round(got["peak_rss_bytes"] / 2**20, 1),
        "goal_held": got["peak_rss_bytes"] < GOAL_BYTES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allstar-rows", type=int, default=real_layout.ALLSTAR_ROWS)
    parser.add_argument("--lamost-rows", type=int, default=real_layout.LAMOST_ROWS)
    parser.add_argument("--out", type=Path, default=None, help="folder for the files (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the written files")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="catalogdb-realsize-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="catalogdb-realsize-home-"))
    server, q3c_mode, stop, described = start_server("embedded", work)
    files = [("apogee-allstar", out / "allStar-dr17-synspec_rev1.fits", real_layout.write_allstar, args.allstar_rows),
             ("lamost-stellar", out / "dr9_v2.0_LRS_stellar.fits", real_layout.write_lamost, args.lamost_rows)]
    result: dict = {"server": described, "cpus": os.cpu_count(),
                    "goal": "peak RSS of the ingest process < 2 GB (2e9 bytes) whatever the file size", "files": []}
    try:
        for source, path, write, n in files:
            if n <= 0:
                continue
            written = write(path, n)
            try:
                result["files"].append(measure(server, q3c_mode, source, path, written))
            finally:
                if not args.keep:
                    path.unlink(missing_ok=True)
    finally:
        stop()
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep and args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    result["goal_held"] = all(f["goal_held"] for f in result["files"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
