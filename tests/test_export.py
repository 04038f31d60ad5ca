"""`catalogdb export`: every format reads back with exact ids, NULLs, booleans, units, UCDs and descriptions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

from catalogdb.db import admin
from catalogdb.errors import BadInput
from catalogdb.export import export
from catalogdb.publish import publish_rows
from conftest import create_database

BIG = 9_007_199_254_740_993  # 2**53 + 1
pytestmark = pytest.mark.filterwarnings("ignore:.dex. did not parse as fits unit")
N = 2500


@pytest.fixture(scope="module")
def db(embedded_server):
    url = create_database(embedded_server)
    engine = sa.create_engine(url)
    admin.init(engine, "compat")
    with engine.begin() as conn:
        conn.execute(sa.text(f"""
            insert into lamost_star (obsid, ra, dec, teff, class)
            select {BIG} + i, i * 0.1, -10 + i * 0.001, case when i % 5 = 0 then null else 5000 + i end,
                   case when i % 4 = 0 then null else 'STAR' end
            from generate_series(0, {N - 1}) i"""))
        conn.execute(sa.text(f"""
            insert into xmatch_lamost_gaia (obsid, source_id, sep_arcsec, rank, best, run_id)
            select obsid, obsid - {BIG}, 0.5, 1, (obsid % 2 = 0), 1 from lamost_star"""))
        conn.execute(sa.text("insert into spectrum select obsid, '\\x00'::bytea, 0, 10, 'x', 'c', 1 from lamost_star"))
        conn.execute(sa.text("""
            insert into cnn_prediction (model_id, obsid, cnn_teff, cnn_feh, run_id)
            select 'm1', obsid, teff, case when obsid % 3 = 0 then null else -0.25 end, 2 from lamost_star"""))
        conn.execute(sa.text("insert into cnn_model (model_id, path, config, training_rows, training_checksum, "
                             "code_version, metrics, run_id) values ('m1', '-', '{}', 0, '-', 't', '{}', 1)"))
        publish_rows(conn, "m1", None, None)
    yield url, engine
    engine.dispose()


def read(path: Path, fmt: str) -> Table:
    if fmt == "csv":
        return Table.read(path, format="ascii.ecsv")
    if fmt == "votable":
        return parse_single_table(path).to_table()
    if fmt == "parquet":  # astropy's parquet reader fails on NULL strings: go through pyarrow
        import pyarrow.parquet as pq
        from astropy.table import MaskedColumn

        arrow = pq.read_table(path)
        table = Table()
        for field in arrow.schema:
            values = arrow[field.name].to_pylist()
            fill = "" if field.type == "string" else (False if field.type == "bool" else 0)
            meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            table[field.name] = MaskedColumn([fill if v is None else v for v in values],
                                             dtype=None if field.type == "string" else field.type.to_pandas_dtype(),
                                             mask=[v is None for v in values], unit=meta.get("unit"),
                                             description=meta.get("description"))
        return table
    return Table.read(path, format="fits")


@pytest.mark.parametrize("fmt", ["csv", "fits", "votable", "parquet"])
def test_final_catalog_round_trip(db, tmp_path, fmt):
    _, engine = db
    path = tmp_path / f"cat.{ {'csv': 'csv', 'fits': 'fits', 'votable': 'xml', 'parquet': 'parquet'}[fmt]}"
    assert export(engine, path, batch_rows=700) == N
    table = read(path, fmt)
    table.sort("obsid")  # final_catalog is written in q3c_ang2ipix order, not obsid order
    assert len(table) == N
    obsid = np.asarray(table["obsid"])
    assert (obsid.dtype.kind, obsid.dtype.itemsize) == ("i", 8) and obsid[0] == BIG and obsid[-1] == BIG + N - 1
    assert str(table["ra"].unit) == "deg" and str(table["cnn_teff"].unit) == "K"
    if fmt != "fits":  # astropy does not read TCOMM back; the header is checked below
        assert "CNN" in table["cnn_feh"].description
    feh_null = np.ma.getmaskarray(table["cnn_feh"]) | np.isnan(np.ma.filled(table["cnn_feh"], np.nan))
    assert list(feh_null) == [(BIG + i) % 3 == 0 for i in range(N)]
    apogee = table["APOGEE_ID"]  # all NULL: no APOGEE match
    assert all(v in ("", b"") for v in np.ma.filled(apogee, ""))
    if fmt in ("csv", "parquet"):  # FITS and VOTable strings have no NULL but the empty string
        assert np.ma.getmaskarray(apogee).all()
    if fmt == "fits":
        header = fits.getheader(path, 1)
        index = table.colnames.index("ra") + 1
        assert header[f"TUNIT{index}"] == "deg" and header[f"TUCD{index}"] == "pos.eq.ra;meta.main"
        assert header[f"TCOMM{index}"].startswith("Right ascension")
    if fmt == "votable":
        field = {f.name: f for f in parse_single_table(path).fields}["ra"]
        assert field.ucd == "pos.eq.ra;meta.main" and field.datatype == "double"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        arrow = pq.read_schema(path)
        assert arrow.field("ra").metadata[b"ucd"] == b"pos.eq.ra;meta.main"
        assert arrow.field("ra").metadata[b"unit"] == b"deg"
        assert b"catalogdb" in arrow.metadata
    if fmt == "csv":
        assert table["ra"].meta["ucd"] == "pos.eq.ra;meta.main"


@pytest.mark.parametrize("fmt", ["csv", "votable", "parquet", "fits"])
def test_booleans_nulls_and_where(db, tmp_path, fmt):
    _, engine = db
    path = tmp_path / "x.out"
    n = export(engine, path, "lamost_star", fmt, where="teff is null or obsid < 9007199254741003")
    with engine.connect() as conn:
        expected = conn.execute(sa.text(
            "select count(*) from lamost_star where teff is null or obsid < 9007199254741003")).scalar()
    assert n == expected and len(read(path, fmt)) == expected
    path = tmp_path / "xm.out"
    export(engine, path, "xmatch_lamost_gaia", fmt)
    best = read(path, fmt)["best"]
    assert best.dtype == bool and list(np.asarray(best)) == [(BIG + i) % 2 == 0 for i in range(N)]


def test_bad_input_is_one_clear_error(db, tmp_path):
    _, engine = db
    with pytest.raises(BadInput, match="nosuch"):
        export(engine, tmp_path / "a.csv", where="nosuch > 1")
    with pytest.raises(BadInput, match="no table or view"):
        export(engine, tmp_path / "a.csv", "nothere")
    with pytest.raises(BadInput, match="format"):
        export(engine, tmp_path / "a.txt")
    with pytest.raises(BadInput):
        export(engine, tmp_path / "a.csv", where="true; drop table lamost_star")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from lamost_star")).scalar() == N
    assert not list(tmp_path.glob("*.part"))


def test_cli_export(db, tmp_path):
    url, _ = db
    env = {**os.environ, "CATALOGDB_URL": url}
    out = tmp_path / "cat.parquet"
    done = subprocess.run([sys.executable, "-m", "catalogdb.cli", "export", str(out), "--where", "cnn_feh < 0"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(read(out, "parquet")) == sum(1 for i in range(N) if (BIG + i) % 3 != 0)
    bad = subprocess.run([sys.executable, "-m", "catalogdb.cli", "export", str(out), "--where", "nosuch"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nosuch" in bad.stderr
