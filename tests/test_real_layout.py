"""Files with the real column sets (catalogdb/mock/real_layout.py) are written as declared and ingest whole."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits

from catalogdb import readers
from catalogdb.ingest.files import ingest_files
from catalogdb.mock import real_layout
from conftest import create_database

ALLSTAR_N, LAMOST_N = 3_000, 5_000


@pytest.fixture(scope="module")
def engine(embedded_server):
    """A fresh migrated database."""
    from catalogdb.db import admin

    eng = sa.create_engine(create_database(embedded_server, "real_layout"))
    admin.init(eng, "compat")
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def allstar(tmp_path_factory):
    """A DR17-layout allStar of ALLSTAR_N rows and its rows as astropy reads them."""
    path = tmp_path_factory.mktemp("allstar") / "allStar-dr17-synspec_rev1.fits"
    written = real_layout.write_allstar(path, ALLSTAR_N)
    with fits.open(path) as hdul:
        return path, written, hdul[1].columns, hdul[1].data.copy()


@pytest.fixture(scope="module")
def lamost(tmp_path_factory):
    """A DR9 v2.0-layout LRS stellar catalogue of LAMOST_N rows and its rows as astropy reads them."""
    path = tmp_path_factory.mktemp("lamost") / "dr9_v2.0_LRS_stellar.fits"
    written = real_layout.write_lamost(path, LAMOST_N)
    with fits.open(path) as hdul:
        return path, written, hdul[1].columns, hdul[1].data.copy()


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_allstar_file_has_the_dr17_columns_and_shapes(allstar):
    _, written, columns, data = allstar
    assert written["columns"] == len(columns) == 234  # the DR17 data model's hdu1 column count
    assert columns.names == [c[0] for c in real_layout.ALLSTAR_DR17]
    assert len(data) == ALLSTAR_N
    shapes = {"PARAM": (9,), "FPARAM": (9,), "PARAMFLAG": (9,), "PARAM_COV": (9, 9), "FPARAM_COV": (9, 9),
              "FPARAM_GRID": (21, 9), "CHI2_GRID": (21,), "X_H": (27,), "X_M_ERR": (27,), "FELEM_ERR": (27,),
              "ELEMFLAG": (27,), "X_M_SPEC": (27,), "VISIT_PK": (100,)}
    for name, shape in shapes.items():
        assert data[name].shape == (ALLSTAR_N, *shape), name
    assert columns["FPARAM_GRID"].dim == "(9,21)" and columns["PARAM_COV"].dim == "(9,9)"
    assert columns["FELEM_ERR"].format == "27D" and columns["PARAMFLAG"].format == "9K"
    assert columns["RA"].unit == "degrees" and columns["LOGG"].unit == "log (cgs)"
    # the columns the spec reads sit on both sides of the array block
    names = columns.names
    assert names.index("GAIAEDR3_SOURCE_ID") < names.index("FPARAM_GRID") < names.index("X_M_SPEC") < \
        names.index("TEFF") < names.index("VISIT_PK")


def test_allstar_ingests_every_row_with_its_values(engine, allstar, monkeypatch):
    path, _, _, data = allstar
    # blocks of 1 MiB (193 rows of 5,410 bytes): the file is read in many byte-bounded chunks, as a full one is
    monkeypatch.setattr(readers, "FITS_BLOCK_BYTES", 1 << 20)
    s = ingest_files(engine, "apogee-allstar", [path])
    assert (s.read, s.inserted, s.rejected) == (ALLSTAR_N, ALLSTAR_N, 0)
    got = {r[:3]: r[3:] for r in rows(engine, "select apogee_id, telescope, field, ra, dec, teff, fe_h, m_h, "
                                              "extratarg, gaiaedr3_source_id from apogee_star")}
    keys = [(a.strip(), t.strip(), f.strip()) for a, t, f in zip(data["APOGEE_ID"], data["TELESCOPE"],
                                                                  data["FIELD"], strict=True)]
    assert len(got) == ALLSTAR_N and set(got) == set(keys)
    assert int((data["EXTRATARG"] == 16).sum()) == ALLSTAR_N // 50  # duplicates of a star in a second field
    for i in (0, 1, 49, 1234, ALLSTAR_N - 1):
        ra, dec, teff, fe_h, m_h, extratarg, gaia = got[keys[i]]
        assert (ra, dec) == (data["RA"][i], data["DEC"][i])
        assert extratarg == data["EXTRATARG"][i] and gaia == data["GAIAEDR3_SOURCE_ID"][i]
        # TEFF, FE_H and M_H come after the multi-dimensional columns in the row
        for value, name in ((teff, "TEFF"), (fe_h, "FE_H"), (m_h, "M_H")):
            want = data[name][i]
            assert (value is None) if np.isnan(want) else np.float32(value) == want, (i, name)
    bad = np.flatnonzero(np.isnan(data["TEFF"]))
    assert bad.size and all(got[keys[i]][2] is None for i in bad)  # STAR_BAD rows: NaN stored as NULL


def test_lamost_file_has_the_dr9_columns(lamost):
    _, written, columns, data = lamost
    assert written["columns"] == len(columns) == len(real_layout.LAMOST_DR9_STELLAR) == 53
    assert columns.names[:3] == ["obsid", "designation", "obsdate"] and "with_norm_flux" in columns.names
    assert columns["gaia_source_id"].format == "25A"  # LAMOST gives Gaia ids as text
    assert len(np.unique(data["obsid"])) == LAMOST_N


def test_lamost_ingests_every_row_with_its_values(engine, lamost):
    path, _, _, data = lamost
    s = ingest_files(engine, "lamost-stellar", [path])
    assert (s.read, s.inserted, s.rejected) == (LAMOST_N, LAMOST_N, 0)
    got = {r[0]: r[1:] for r in rows(engine, "select obsid, ra, dec, teff, gaia_source_id, obsdate, spid, snrg "
                                             "from lamost_star")}
    assert set(got) == set(int(o) for o in data["obsid"])
    for i in (0, 1, 2500, LAMOST_N - 1):
        ra, dec, teff, gaia, obsdate, spid, snrg = got[int(data["obsid"][i])]
        assert (ra, dec) == (data["ra"][i], data["dec"][i])
        assert (teff is None) if data["teff"][i] == -9999 else np.float32(teff) == data["teff"][i]
        text = data["gaia_source_id"][i].strip()
        assert gaia == (None if text == "-9999" else int(text))
        assert obsdate == date.fromisoformat(data["obsdate"][i]) and spid == data["spid"][i]
        assert np.float32(snrg) == data["snrg"][i]
    missing = np.flatnonzero(np.char.strip(data["gaia_source_id"]) == "-9999")
    failed = np.flatnonzero(data["teff"] == -9999)
    assert missing.size and all(got[int(data["obsid"][i])][3] is None for i in missing)
    assert failed.size and all(got[int(data["obsid"][i])][2] is None for i in failed)
