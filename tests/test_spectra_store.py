"""`catalogdb ingest spectra`: stored flux equals the preprocessing, rejections recorded, re-runs skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa

from catalogdb.db import admin
from catalogdb.spectra import process_file
from catalogdb.spectra_store import ingest_spectra
from conftest import FIXTURES, create_database


@pytest.fixture
def engine(embedded_server):
    eng = sa.create_engine(create_database(embedded_server))
    admin.init(eng, "compat")
    yield eng
    eng.dispose()


@pytest.fixture
def spectra_dir(tmp_path):
    folder = tmp_path / "spectra"
    shutil.copytree(FIXTURES / "lamost_lrs", folder)
    (folder / "broken.fits").write_bytes((folder / "3706009.fits").read_bytes()[:5000])
    return folder


def test_ingest_stores_preprocessed_flux_and_records_rejections(engine, spectra_dir):
    summary = ingest_spectra(engine, [spectra_dir], workers=2)
    assert (summary.found, summary.stored, summary.rejected) == (12, 11, 1)
    with engine.connect() as conn:
        flux, flag = conn.execute(sa.text("select flux, flag from spectrum where obsid = 3706009")).one()
        reason = conn.execute(sa.text("select reason from spectrum_reject")).scalar_one()
        run = conn.execute(sa.text("select status, row_counts from run where run_id = :r"),
                           {"r": summary.run_id}).one()
    expected = process_file(spectra_dir / "3706009.fits")
    np.testing.assert_array_equal(np.frombuffer(flux, dtype="<f4"), expected.flux)
    assert flag == expected.flag
    assert reason
    assert run.status == "done" and run.row_counts["stored"] == 11

    again = ingest_spectra(engine, [spectra_dir], workers=1)
    assert (again.unchanged, again.stored, again.rejected) == (12, 0, 0)


def test_resumes_only_what_is_missing(engine, spectra_dir):
    first = sorted(spectra_dir.glob("37*.fits"))[:4]
    assert ingest_spectra(engine, first, workers=1).stored == 4
    summary = ingest_spectra(engine, [spectra_dir], workers=1)
    assert (summary.unchanged, summary.stored) == (4, 7)


def test_cli_names_a_missing_folder(engine, tmp_path):
    url = engine.url.render_as_string(hide_password=False)
    result = subprocess.run([sys.executable, "-m", "catalogdb.cli", "ingest", "spectra", str(tmp_path / "nope")],
                            capture_output=True, text=True, env={**os.environ, "CATALOGDB_URL": url})
    assert result.returncode == 2
    assert "nope" in result.stderr and "Traceback" not in result.stderr
