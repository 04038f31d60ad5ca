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


def _stored_and_rejected(engine, obsid: int) -> tuple[list[str], dict[str, str]]:
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.text("select path from spectrum where obsid = :o"), {"o": obsid})]
        rejected = dict(conn.execute(sa.text("select path, reason from spectrum_reject where obsid = :o"),
                                     {"o": obsid}).all())
    return stored, rejected


def test_two_files_with_one_obsid_in_one_ingest_keep_the_first_path_and_reject_the_other(engine, spectra_dir):
    original = spectra_dir / "3706009.fits"
    copy = spectra_dir / "zz_3706009_again.fits"
    shutil.copyfile(original, copy)
    summary = ingest_spectra(engine, [spectra_dir], workers=2)
    assert (summary.found, summary.stored, summary.rejected) == (13, 11, 2)
    assert summary.reasons["duplicate OBSID"] == 1
    stored, rejected = _stored_and_rejected(engine, 3706009)
    assert stored == [str(original)]
    assert rejected == {str(copy): f"duplicate OBSID 3706009: also in {original}"}
    again = ingest_spectra(engine, [spectra_dir], workers=1)
    assert (again.unchanged, again.stored, again.rejected) == (13, 0, 0)


def test_the_kept_path_does_not_depend_on_the_order_files_finish(engine, spectra_dir, monkeypatch):
    original = spectra_dir / "3706009.fits"
    later = spectra_dir / "zz_3706009_again.fits"
    shutil.copyfile(original, later)
    monkeypatch.setattr("catalogdb.spectra_store.BATCH", 1)  # the larger path is stored first, then replaced
    summary = ingest_spectra(engine, [later, original], workers=1)
    assert (summary.stored, summary.rejected, summary.reasons) == (1, 1, {"duplicate OBSID": 1})
    stored, rejected = _stored_and_rejected(engine, 3706009)
    assert stored == [str(original)]
    assert rejected == {str(later): f"duplicate OBSID 3706009: also in {original}"}


def test_an_obsid_already_stored_from_another_file_is_rejected_naming_both(engine, spectra_dir, tmp_path):
    original = spectra_dir / "3706009.fits"
    ingest_spectra(engine, [original], workers=1)
    other = tmp_path / "elsewhere" / "3706009.fits"
    other.parent.mkdir()
    shutil.copyfile(original, other)
    summary = ingest_spectra(engine, [other], workers=1)
    assert (summary.stored, summary.rejected) == (0, 1)
    stored, rejected = _stored_and_rejected(engine, 3706009)
    assert stored == [str(original)]
    assert rejected == {str(other): f"duplicate OBSID 3706009: already stored from {original}"}
    # once the stored file is gone, the other one is the file moved: it takes its place
    original.unlink()
    moved = tmp_path / "moved" / "3706009.fits"
    moved.parent.mkdir()
    shutil.copyfile(other, moved)
    assert ingest_spectra(engine, [moved], workers=1).stored == 1
    assert _stored_and_rejected(engine, 3706009)[0] == [str(moved)]
