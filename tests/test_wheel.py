"""A real wheel: built from the package alone, installed into a new venv outside the checkout, it runs.

The new venv gets catalogdb from the wheel only. Its dependencies come from the test environment
through a path file (not a site directory, so the checkout's editable hook there is not run):
re-installing 2 GB of locked dependencies per test run would test pip, not the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_wheel_installs_and_runs_db_init_and_ingest_outside_the_checkout(tmp_path):
    src = tmp_path / "src"  # only what the wheel is built from: no tests, no benchmarks, no checkout around it
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "catalogdb", src / "catalogdb", ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
          str(tmp_path / "dist"), str(src)])
    (wheel,) = (tmp_path / "dist").glob("catalogdb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("catalogdb/alembic.ini", "catalogdb/migrations/env.py", "catalogdb/migrations/script.py.mako",
                 "catalogdb/migrations/versions/0001_q3c_layer.py", "catalogdb/sources/gaia-dr3.toml",
                 "catalogdb/db/sql/q3c_compat/v2.sql", "catalogdb/db/sql/views/final_catalog/v1.sql"):
        assert data in names, data

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
          str(wheel)])
    shutil.rmtree(src)  # nothing of the source tree is left to lean on

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CATALOGDB_URL", "PYTHONPATH")}
    env["CATALOGDB_HOME"] = str(tmp_path / "home")
    where = _run([str(python), "-c", "import catalogdb; print(catalogdb.__file__)"], cwd=work, env=env).stdout
    assert Path(where.strip()).is_relative_to(venv), where
    cli = str(venv / "bin" / "catalogdb")
    try:
        _run([cli, "mock", "--out", str(work / "survey"), "--stars", "200", "--spectra", "none"], cwd=work, env=env)
        init = _run([cli, "db", "init"], cwd=work, env=env)
        assert "q3c" in init.stdout + init.stderr
        gaia = work / "survey" / "gaia" / "gaia_dr3_source.csv"
        _run([cli, "ingest", "gaia-dr3", str(gaia)], cwd=work, env=env)
        status = _run([cli, "db", "status"], cwd=work, env=env).stdout
        n_rows = sum(1 for _ in gaia.open()) - 1
        (line,) = [line for line in status.splitlines() if " gaia_source " in line]
        assert f" {n_rows:,} " in line, status
    finally:
        subprocess.run([cli, "db", "stop"], cwd=work, env=env, capture_output=True, timeout=120)
