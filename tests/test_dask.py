"""Past one machine: LSDB over HATS for the Gaia crossmatch, Dask workers for spectra and predict, HATS export.

Every Dask run here uses a LocalCluster of 2 worker processes (`--dask local:2`): processes, as on a real
cluster, so everything a worker gets and returns is pickled, and each worker imports catalogdb itself.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from catalogdb.cnn.predict import predict
from catalogdb.dask_workers import local_workers
from catalogdb.db import admin
from catalogdb.errors import BadInput
from catalogdb.hats import export_hats
from catalogdb.ingest.files import ingest_files
from catalogdb.mock import CATALOGUE_FILES, GAIA_HATS, SPECTRA_DIR, write_survey
from catalogdb.spectra_store import ingest_spectra
from catalogdb.xmatch import run_xmatch
from catalogdb.xmatch_hats import gaia_columns
from conftest import create_database

DASK = "local:2"
GAIA_COLUMNS = "source_id, ra, dec, parallax, phot_g_mean_mag, bp_rp, parallax_zeropoint, zpt_valid, zpt_clamped"


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("mock_hats")
    write_survey(out, stars=1500, seed=7, spectra="none", gaia_hats=True)
    return out


def _database(server: str, survey, sources) -> sa.Engine:
    engine = sa.create_engine(create_database(server))
    admin.init(engine, "compat")
    for source in sources:
        ingest_files(engine, source, [survey / CATALOGUE_FILES[source]])
    return engine


@pytest.fixture(scope="module")
def both_crossmatches(embedded_server, survey):
    """(q3c database, LSDB database): the same survey, the second without gaia_source until its crossmatch."""
    q3c = _database(embedded_server, survey, CATALOGUE_FILES)
    run_xmatch(q3c, jobs=2)
    lsdb_db = _database(embedded_server, survey, [s for s in CATALOGUE_FILES if s != "gaia-dr3"])
    run_xmatch(lsdb_db, jobs=2, gaia_hats=str(survey / GAIA_HATS), dask=DASK)
    yield q3c, lsdb_db
    q3c.dispose()
    lsdb_db.dispose()


def _frame(engine: sa.Engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(sql), conn)


def test_lsdb_crossmatch_equals_q3c(both_crossmatches):
    q3c, lsdb_db = both_crossmatches
    sql = "select obsid, source_id, sep_arcsec, rank, best from xmatch_lamost_gaia order by obsid, rank"
    ours, theirs = _frame(lsdb_db, sql), _frame(q3c, sql)
    assert len(theirs) > 1000 and (theirs["rank"] > 1).any()  # the mock puts field stars within 3 arcsec
    # both rank in PostgreSQL with q3c_dist over the same coordinates: equal to the last bit
    pd.testing.assert_frame_equal(ours, theirs)


def test_lsdb_loads_only_the_matched_gaia_rows(both_crossmatches):
    q3c, lsdb_db = both_crossmatches
    loaded = _frame(lsdb_db, f"select {GAIA_COLUMNS} from gaia_source order by source_id")
    matched = _frame(q3c, f"select {GAIA_COLUMNS} from gaia_source where source_id in "
                          "(select source_id from xmatch_lamost_gaia) order by source_id")
    assert len(loaded) < _frame(q3c, "select count(*) as n from gaia_source")["n"][0]
    pd.testing.assert_frame_equal(loaded, matched)  # zero points included
    runs = _frame(lsdb_db, "select run_id, command, status, parameters->>'gaia_hats' as hats, inputs::text "
                           "as inputs from run order by run_id")
    xmatch, ingest = runs.iloc[-2], runs.iloc[-1]  # the matched rows are ingested inside the crossmatch run
    assert (xmatch["command"], ingest["command"]) == ("xmatch", "ingest") and runs["status"].eq("done").all()
    assert xmatch["hats"].endswith(GAIA_HATS) and f"gaia_hats_matched_run{xmatch['run_id']}" in ingest["inputs"]


def test_spectra_through_dask_equal_the_local_ones(trained_mock, embedded_server, tmp_path_factory):
    local, _ = trained_mock  # its spectra were ingested here, in this process (workers=1)
    folder = tmp_path_factory.getbasetemp() / "explain_mock" / "survey" / SPECTRA_DIR
    engine = sa.create_engine(create_database(embedded_server))
    admin.init(engine, "compat")
    summary = ingest_spectra(engine, [folder], dask=DASK)
    sql = "select obsid, flux, flag, snrg, path, checksum from spectrum order by obsid"
    ours, theirs = _frame(engine, sql), _frame(local, sql)
    assert summary.stored == len(theirs) > 100
    pd.testing.assert_frame_equal(ours, theirs)  # flux as bytes: bit for bit
    with engine.connect() as conn:
        assert conn.execute(sa.text("select parameters->>'dask' from run where command = 'ingest spectra'")
                            ).scalar_one() == DASK
    again = ingest_spectra(engine, [folder], dask=DASK)  # resumable: nothing left to do
    assert (again.unchanged, again.stored) == (len(theirs), 0)
    engine.dispose()


PREDICTED = ("select obsid, cnn_teff, cnn_logg, cnn_feh, cnn_mg, cnn_bprp, cnn_teff_err, cnn_distance, r "
             "from cnn_prediction where model_id = :m order by obsid")


def test_predictions_through_dask_equal_the_local_ones(trained_mock):
    engine, model_id = trained_mock
    local = predict(engine, model_id, all_spectra=True)
    with engine.connect() as conn:
        theirs = pd.read_sql(sa.text(PREDICTED), conn, params={"m": model_id})
    remote = predict(engine, model_id, all_spectra=True, batch_size=64, dask=DASK)
    with engine.connect() as conn:
        ours = pd.read_sql(sa.text(PREDICTED), conn, params={"m": model_id})
    assert remote["predicted"] == local["predicted"] == len(ours) > 100
    # the same networks on the same spectra, batched differently (64 here, 1024 there): float32 kernels may
    # sum in another order per batch size, hence 1e-6 relative rather than equality
    pd.testing.assert_frame_equal(ours, theirs, rtol=1e-6, atol=0)


def test_hats_export_opens_in_lsdb_and_cones_like_q3c(trained_mock, tmp_path):
    import lsdb
    import pyarrow.parquet as pq

    engine, model_id = trained_mock
    predict(engine, model_id, all_spectra=True)  # final_catalog filled (as test_publish does)
    out = tmp_path / "final_catalog_hats"
    rows = export_hats(engine, out)
    with engine.connect() as conn:
        ra, dec = conn.execute(sa.text("select ra, dec from final_catalog order by obsid limit 1")).one()
        cone = {r[0] for r in conn.execute(sa.text(
            "select obsid from final_catalog where q3c_radial_query(ra, dec, :ra, :dec, 20)"), {"ra": ra, "dec": dec})}
        total = conn.execute(sa.text("select count(*) from final_catalog")).scalar_one()
    catalog = lsdb.open_catalog(out)
    assert rows == total == len(catalog.compute())
    found = catalog.cone_search(ra, dec, 20 * 3600).compute()
    assert 10 < len(cone) < total and set(found["obsid"].astype(int)) == cone
    schema = pq.read_schema(next(out.glob("*/dataset/_common_metadata")))
    feh = schema.field("cnn_feh").metadata
    assert feh[b"unit"] == b"dex" and feh[b"description"]
    with pytest.raises(BadInput, match="already exists"):
        export_hats(engine, out)


def test_dask_addresses():
    assert (local_workers("local"), local_workers("local:3"), local_workers("tcp://10.0.0.5:8786")) == (2, 3, None)
    for bad in ("local:0", "local:x"):
        with pytest.raises(BadInput, match="expected local, local:N"):
            local_workers(bad)


def test_gaia_hats_columns_map_by_archive_name():
    archive = ["SOURCE_ID", "ra", "dec", "parallax", "parallax_error", "parallax_over_error", "phot_g_mean_mag",
               "bp_rp", "nu_eff_used_in_astrometry", "pseudocolour", "ecl_lat", "astrometric_params_solved",
               "ag_gspphot", "ebpminrp_gspphot", "distance_gspphot", "ruwe", "phot_variable_flag"]
    columns = gaia_columns(archive)
    assert columns["source_id"] == "SOURCE_ID" and columns["ruwe"] == "ruwe" and "pmra" not in columns
    assert "phot_variable_flag" not in columns.values()  # not in the spec: not read
    with pytest.raises(BadInput, match="lacks the column.*parallax_error"):
        gaia_columns([c for c in archive if c != "parallax_error"])


def test_cli_dask_without_gaia_hats_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "catalogdb.cli", "xmatch", "--dask", "local"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: --dask needs --gaia-hats: the q3c crossmatch runs inside PostgreSQL")
