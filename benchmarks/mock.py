"""Benchmark the mock survey generator: wall time and peak memory per configuration, printed as JSON.

Each configuration runs in a fresh subprocess so its peak RSS is its own. Usage:
    python benchmarks/mock.py [--big 7000000] [--small 20000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from catalogdb.mock import write_survey
t = time.perf_counter()
s = write_survey(Path(sys.argv[1]), stars=int(sys.argv[2]), seed=1, spectra=sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "lamost_rows": s["lamost_rows"], "gaia_rows": s["gaia_rows"], "spectra_files": s["spectra_files"]}))
"""


def run(out: Path, stars: int, spectra: str) -> dict:
    """Run one configuration in a subprocess and return its figures."""
    target = out / f"mock_{stars}_{spectra}"
    shutil.rmtree(target, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, str(target), str(stars), spectra],
                       capture_output=True, text=True, check=True)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    shutil.rmtree(target, ignore_errors=True)
    return {"stars": stars, "spectra": spectra, "wall_s": round(time.perf_counter() - t, 1),
            "generator_s": round(res["seconds"], 1), "peak_rss_mb": round(res["peak_rss_mb"]),
            "output_mb": round(size / 2**20), "lamost_rows": res["lamost_rows"], "gaia_rows": res["gaia_rows"],
            "spectra_files": res["spectra_files"],
            "stars_per_s": round(stars / res["seconds"]) if spectra == "none" else None,
            "spectra_per_s": round(res["spectra_files"] / res["seconds"]) if res["spectra_files"] else None}


def main() -> None:
    """Parse arguments, run both configurations and print one JSON document."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--big", type=int, default=7_000_000, help="stars for the --spectra none run")
    ap.add_argument("--small", type=int, default=20_000, help="stars for the --spectra all run")
    ap.add_argument("--out", type=Path, default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="catalogdb-mock-bench-"))
    results = [run(out, a.small, "all"), run(out, a.big, "none")]
    big = results[1]
    print(json.dumps({
        "benchmark": "mock survey generator",
        "results": results,
        "extrapolated_7M_none_s": round(big["generator_s"] * 7_000_000 / big["stars"]) if big["stars"] else None,
        "memory_limit_mb": 4096, "within_memory_limit": big["peak_rss_mb"] < 4096,
        "bench_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }, indent=2))


if __name__ == "__main__":
    main()
