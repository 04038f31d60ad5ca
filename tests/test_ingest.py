"""`catalogdb ingest` for the catalogue sources: formats, units, idempotency, atomicity, bad input."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from astropy.io import fits
from astropy.table import MaskedColumn, Table

from catalogdb.errors import BadInput
from catalogdb.ingest.copy import encode_binary
from catalogdb.ingest.files import IngestSummary, ingest_files
from catalogdb.ingest.spec import load_spec, sources
from catalogdb.ingest.units import file_unit_scale, units_match
from catalogdb.readers import detect_format
from conftest import FIXTURES, create_database

GAIA_ECSV = FIXTURES / "gaia" / "gaia_dr3_cone_280_m60.ecsv"
FORMATS = ["csv", "csv.gz", "fits", "votable", "parquet", "ecsv"]


# --- the database: one migrated template, a fresh copy per test ----------------------------------------

@pytest.fixture(scope="module")
def template(embedded_server) -> str:
    from catalogdb.db import admin

    url = create_database(embedded_server, "ingest_tpl")
    engine = sa.create_engine(url)
    admin.init(engine, "compat")
    engine.dispose()
    return url


@pytest.fixture
def db(template, embedded_server):
    """A fresh migrated database (a copy of the template) and its engine."""
    name = "ingest_" + os.urandom(5).hex()
    admin_engine = sa.create_engine(embedded_server, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'create database "{name}" template "{sa.engine.make_url(template).database}"'))
    admin_engine.dispose()
    url = sa.engine.make_url(embedded_server).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def count(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def fetch(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


# --- small survey tables, written in every format -------------------------------------------------------

def survey_table(source: str, n: int = 40, seed: int = 0) -> tuple[pa.Table, dict[str, str]]:
    """A small table of `source` rows under the survey's own column names, with its units."""
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-89, 89, n)
    f4 = lambda lo, hi: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731
    holes = rng.random(n) < 0.25
    if source == "gaia-dr3":
        cols = {"solution_id": pa.array(np.full(n, 1636148068921376768)),
                "source_id": pa.array(6636090334814214528 + np.arange(n, dtype=np.int64) * 1_000_003),
                "ra": pa.array(ra), "dec": pa.array(dec), "parallax": pa.array(rng.normal(1, 0.5, n)),
                "parallax_error": pa.array(f4(0.01, 0.3)), "parallax_over_error": pa.array(f4(1, 50)),
                "pmra": pa.array(rng.normal(0, 5, n)), "phot_g_mean_mag": pa.array(f4(9, 19)),
                "bp_rp": pa.array(f4(0.5, 2)), "nu_eff_used_in_astrometry": pa.array(f4(1.3, 1.7), mask=holes),
                "pseudocolour": pa.array(f4(1.3, 1.7), mask=~holes), "ecl_lat": pa.array(dec * 0.9),
                "astrometric_params_solved": pa.array(np.where(holes, 95, 31).astype(np.int16)),
                "ag_gspphot": pa.array(f4(0, 1), mask=holes), "ebpminrp_gspphot": pa.array(f4(0, 0.5), mask=holes),
                "distance_gspphot": pa.array(f4(100, 3000), mask=holes),
                "logg_gspphot": pa.array(f4(3, 5), mask=holes), "mh_gspphot": pa.array(f4(-1, 0.5), mask=holes)}
        units = {"ra": "deg", "dec": "deg", "parallax": "mas", "parallax_error": "mas", "pmra": "mas.yr**-1",
                 "phot_g_mean_mag": "mag", "bp_rp": "mag", "nu_eff_used_in_astrometry": "um**-1",
                 "pseudocolour": "um**-1", "ecl_lat": "deg", "ag_gspphot": "mag", "ebpminrp_gspphot": "mag",
                 "distance_gspphot": "pc", "logg_gspphot": "log(cm.s**-2)", "mh_gspphot": "dex"}
    elif source == "bailer-jones":
        med = f4(100, 5000)
        cols = {"source_id": pa.array(4_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 7919)}
        for kind in ("geo", "photogeo"):
            cols[f"r_med_{kind}"] = pa.array(med, mask=holes if kind == "photogeo" else None)
            cols[f"r_lo_{kind}"] = pa.array(med * np.float32(0.9), mask=holes if kind == "photogeo" else None)
            cols[f"r_hi_{kind}"] = pa.array(med * np.float32(1.1), mask=holes if kind == "photogeo" else None)
        cols["flag"] = pa.array([f"{x:05d}" for x in rng.integers(0, 20000, n)])
        units = {c: "pc" for c in cols if c.startswith("r_")}
    elif source == "lamost-stellar":
        teff = f4(4000, 7000)
        teff[holes] = -9999
        gid = (4_000_000_000_000_000 + np.arange(n) * 13).astype(np.int64)
        gid[holes] = -9999
        cols = {"obsid": pa.array(100_000_001 + np.arange(n, dtype=np.int64) * 3),
                "uid": pa.array([f"U{i:010d}" for i in range(n)]),
                "designation": pa.array([f"J{i:06d}.00+{i:06d}.0" for i in range(n)]),
                "obsdate": pa.array([f"2015-10-{1 + i % 28:02d}" for i in range(n)]),
                "lmjd": pa.array(rng.integers(55800, 59400, n).astype(np.int32)),
                "planid": pa.array(["GAC080N37M1" for _ in range(n)]),
                "spid": pa.array(rng.integers(1, 17, n).astype(np.int16)),
                "fiberid": pa.array(rng.integers(1, 251, n).astype(np.int16)),
                "ra": pa.array(ra), "dec": pa.array(dec), "snru": pa.array(f4(1, 30)), "snrg": pa.array(f4(2, 90)),
                "snrr": pa.array(f4(2, 120)), "class": pa.array(["STAR"] * n), "subclass": pa.array(["G2"] * n),
                "z": pa.array(rng.normal(0, 1e-4, n)), "fibermask": pa.array(np.zeros(n, np.int32)),
                "teff": pa.array(teff), "teff_err": pa.array(f4(20, 200)), "logg": pa.array(f4(1, 5)),
                "logg_err": pa.array(f4(0.01, 0.5)), "feh": pa.array(f4(-2, 0.5)), "feh_err": pa.array(f4(0.01, 0.3)),
                "rv": pa.array(f4(-100, 100)), "rv_err": pa.array(f4(1, 10)),
                "gaia_source_id": pa.array(gid), "tsource": pa.array(["PanSTARRS"] * n)}
        units = {"ra": "deg", "dec": "deg", "teff": "K", "teff_err": "K", "logg": "dex", "feh": "dex", "rv": "km/s"}
    elif source == "apogee-allstar":
        ids = [f"2M{i:08d}+{i:07d}" for i in range(n)]
        cols = {"APOGEE_ID": pa.array(ids), "TELESCOPE": pa.array(["apo25m" if i % 3 else "lco25m" for i in range(n)]),
                "FIELD": pa.array([f"F{i % 4:05d}" for i in range(n)]), "RA": pa.array(ra), "DEC": pa.array(dec),
                "SNR": pa.array(f4(10, 500)), "STARFLAG": pa.array(rng.integers(0, 2**40, n)),
                "ASPCAPFLAG": pa.array(np.where(holes, 1 << 23, 0).astype(np.int64)),
                "EXTRATARG": pa.array(np.zeros(n, np.int32))}
        for k, lo, hi in (("TEFF", 4000, 6500), ("LOGG", 1, 5), ("FE_H", -1.5, 0.4)):
            v = f4(lo, hi)
            v[holes] = np.nan
            cols[k], cols[f"{k}_ERR"] = pa.array(v), pa.array(f4(0.01, 50))
        cols["GAIAEDR3_SOURCE_ID"] = pa.array(np.arange(n, dtype=np.int64) + 10**15)
        units = {"RA": "deg", "DEC": "deg", "TEFF": "K", "TEFF_ERR": "K"}
    else:
        raise ValueError(source)
    return pa.table(cols), units


def to_astropy(table: pa.Table, units: dict[str, str]) -> Table:
    out = Table()
    for name in table.column_names:
        arr = table.column(name).combine_chunks()
        mask = np.asarray(arr.is_null())
        if pa.types.is_string(arr.type):
            values = np.array([v or "" for v in arr.to_pylist()])
        elif pa.types.is_floating(arr.type):
            values = arr.fill_null(np.nan).to_numpy()
        else:
            values = arr.fill_null(0).to_numpy()
        out[name] = MaskedColumn(values, mask=mask, unit=units.get(name))
    return out


def write(table: pa.Table, units: dict[str, str], path: Path, fmt: str, extra_fits_array: bool = False) -> Path:
    """Write `table` as `fmt` (csv, csv.gz, fits, votable, parquet, ecsv)."""
    if fmt in ("csv", "csv.gz"):
        sink = pa.BufferOutputStream()
        pcsv.write_csv(table, sink)
        data = sink.getvalue().to_pybytes()
        path.write_bytes(gzip.compress(data) if fmt == "csv.gz" else data)
    elif fmt == "parquet":
        pq.write_table(table, path)
    else:
        t = to_astropy(table, units)
        if fmt == "fits" and extra_fits_array:
            t["PARAM"] = np.zeros((len(t), 9), np.float32)
        t.write(path, format={"fits": "fits", "votable": "votable", "ecsv": "ascii.ecsv"}[fmt], overwrite=True)
    return path


# --- specs, units, encoder ------------------------------------------------------------------------------

def test_specs_load_and_match_the_schema():
    assert set(sources()) >= {"lamost-stellar", "gaia-dr3", "bailer-jones", "apogee-allstar"}
    for source in ("lamost-stellar", "gaia-dr3", "bailer-jones", "apogee-allstar"):
        spec = load_spec(source)
        assert spec.key and all(k in {c.name for c in spec.columns} for k in spec.key)


@pytest.mark.parametrize("found,ok", [("deg", True), ("mas.yr**-1", True), ("um**-1", True), ("'dex'", True),
                                      ("log(cm.s**-2)", True), ("K", False), ("arcsec", False), ("kpc", False)])
def test_units_match(found, ok):
    spec = {c.name: c for c in load_spec("gaia-dr3").columns}
    col = {"deg": "ra", "mas.yr**-1": "pmra", "um**-1": "pseudocolour", "'dex'": "mh_gspphot",
           "log(cm.s**-2)": "logg_gspphot", "K": "ra", "arcsec": "ra", "kpc": "distance_gspphot"}[found]
    assert units_match(found, spec[col]) is ok


@pytest.mark.parametrize("found,expect", [(None, ("kpc", 1000.0)), ("kpc", ("kpc", 1000.0)), ("pc", ("pc", 1.0)),
                                          ("Mpc", ("Mpc", 1e6)), ("mag", None), ("km/s", None)])
def test_file_unit_scale(found, expect):
    """StarHorse writes kpc: the file's own unit wins, the spec's stands in where the file states none."""
    dist50 = {c.name: c for c in load_spec("starhorse").columns}["dist50_pc"]
    got = file_unit_scale(found, dist50, "pc")
    assert got == (expect if expect is None else (expect[0], pytest.approx(expect[1], rel=1e-12)))


def test_binary_encoder_layout():
    table = pa.table({"a": pa.array([1, None], pa.int16()), "s": pa.array(["xy", None]),
                      "d": pa.array([0, 10957], pa.date32())})
    out = encode_binary(table).tobytes()
    row1 = b"\x00\x03" + b"\x00\x00\x00\x02\x00\x01" + b"\x00\x00\x00\x02xy" + b"\x00\x00\x00\x04\xff\xff\xd5\x33"
    row2 = b"\x00\x03" + b"\xff\xff\xff\xff" + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x04\x00\x00\x00\x00"
    assert out == row1 + row2


# --- the real Gaia rows --------------------------------------------------------------------------------

def test_real_gaia_ecsv_round_trip(db):
    summary = ingest_files(db, "gaia-dr3", [GAIA_ECSV])
    assert (summary.read, summary.inserted, summary.rejected) == (5, 5, 0)
    expected = Table.read(GAIA_ECSV, format="ascii.ecsv")
    rows = {r.source_id: r for r in fetch(db, "select * from gaia_source")}
    assert set(rows) == {int(s) for s in expected["source_id"]}  # int64 exact, no float rounding
    for src in expected:
        row = rows[int(src["source_id"])]
        assert row.ra == float(src["ra"]) and row.dec == float(src["dec"])
        for name in ("teff_gspphot", "ag_gspphot", "distance_gspphot", "parallax", "pseudocolour"):
            value = src[name]
            missing = np.ma.is_masked(value) or np.isnan(value)
            assert (getattr(row, name) is None) == bool(missing), name
            if not missing:
                assert np.float32(getattr(row, name)) == np.float32(value)
    assert sum(r.teff_gspphot is None for r in rows.values()) >= 1
    run = fetch(db, "select command, parameters, inputs, row_counts, status from run")[0]
    assert run.command == "ingest" and run.status == "done" and run.parameters["source"] == "gaia-dr3"
    assert run.inputs[0]["sha256"] and run.row_counts["inserted"] == 5


# --- every format, every source --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["gaia-dr3", "bailer-jones", "lamost-stellar", "apogee-allstar"])
def test_every_format_gives_the_same_rows(db, tmp_path, source):
    table, units = survey_table(source)
    spec = load_spec(source)
    formats = [f for f in FORMATS if f in spec.formats]
    first = None
    for fmt in formats:
        path = write(table, units, tmp_path / f"{source}.{fmt}", fmt, extra_fits_array=source == "apogee-allstar")
        assert detect_format(path) == fmt
        s = ingest_files(db, source, [path])
        assert s.read == 40 and s.rejected == 0, fmt
        if first is None:
            first = fmt
            assert s.inserted == 40
        else:  # every other format carries exactly the same values: nothing to update
            assert (s.inserted, s.updated, s.unchanged) == (0, 0, 40), f"{fmt} differs from {first}"
    assert count(db, f"select count(*) from {spec.table}") == 40
    if source == "lamost-stellar":
        # -9999 is LAMOST's missing value; dates and strings arrive typed and trimmed
        holes = int(np.sum(table.column("teff").to_numpy() == -9999))
        assert count(db, "select count(*) from lamost_star where teff is null") == holes
        assert count(db, "select count(*) from lamost_star where gaia_source_id is null") == holes
        assert count(db, "select min(obsdate)::text from lamost_star") == "2015-10-01"
        assert count(db, "select count(*) from lamost_star where uid ~ '^U[0-9]{10}$'") == 40
    if source == "apogee-allstar":
        assert count(db, "select count(*) from apogee_star where teff is null") == int(
            np.isnan(table.column("TEFF").to_numpy()).sum())
        assert count(db, "select max(starflag) from apogee_star") == int(table.column("STARFLAG").to_numpy().max())
    if source == "bailer-jones":
        assert count(db, "select count(*) from gaia_distance where flag ~ '^[0-9]{5}$'") == 40
        assert count(db, "select count(*) from gaia_distance where r_med_photogeo is null") == table.column(
            "r_med_photogeo").null_count
    if source == "gaia-dr3":
        ids = sorted(table.column("source_id").to_pylist())
        assert [r[0] for r in fetch(db, "select source_id from gaia_source order by 1")] == ids


def test_apogee_refuses_votable(db, tmp_path):
    table, units = survey_table("apogee-allstar")
    path = write(table, units, tmp_path / "allstar.vot", "votable")
    with pytest.raises(BadInput, match=r"allstar.vot: is a votable file; apogee-allstar accepts fits"):
        ingest_files(db, "apogee-allstar", [path])


# --- the surveys' own file layouts (column names, case, types, units and array columns of their data models) --

def fits_file(path: Path, columns: list[tuple[str, str, object, str | None]]) -> Path:
    """A FITS binary table in HDU 1 with exactly these columns: (name, TFORM, values, TUNIT or None)."""
    cols = [fits.Column(name=n, format=f, array=np.asarray(v), unit=u) for n, f, v, u in columns]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def dr17_allstar(path: Path) -> Path:
    """Six allStar rows in the DR17 data model's layout; row 5 is a duplicate (EXTRATARG bit 4) of row 0."""
    n = 6
    ids = ["2M00000002+7417074", "2M00000019-1924498", "2M00000032+5737103", "2M00000068+5710233",
           "2M00000133+5721163", "2M00000002+7417074"]
    fields = ["120+12", "060-75", "N7789", "N7789", "N7789", "118+10"]
    tel = ["apo25m", "lco25m", "apo25m", "apo25m", "apo1m", "apo25m"]
    teff = np.array([5800.5, 4500.25, np.nan, 6100.0, 5200.0, 5810.0], np.float32)
    rng = np.random.default_rng(1)
    return fits_file(path, [
        ("FILE", "64A", [f"apStar-dr17-{i}.fits" for i in ids], None), ("APOGEE_ID", "30A", ids, None),
        ("APSTAR_ID", "71A", [f"apogee.{t}.stars.{f}.{i}" for t, f, i in zip(tel, fields, ids, strict=True)], None),
        ("TELESCOPE", "6A", tel, None), ("LOCATION_ID", "J", np.arange(n, dtype=np.int32), None),
        ("FIELD", "20A", fields, None), ("RA", "D", np.array([0.0083, 0.0795, 0.1334, 0.2833, 0.5554, 0.0083]),
                                         "degrees"),
        ("DEC", "D", np.array([74.2854, -19.4138, 57.6195, 57.1731, 57.3545, 74.2854]), "degrees"),
        ("SNR", "E", np.array([120, 85, 40, 300, 55, 60], np.float32), None),
        ("STARFLAG", "K", np.array([0, 1 << 3, 0, 0, 1 << 17, 0], np.int64), None),
        ("STARFLAGS", "132A", ["", "BRIGHT_NEIGHBOR", "", "", "RV_WARN", ""], None),
        ("ASPCAPFLAG", "K", np.array([0, 0, 1 << 23, 0, 0, 0], np.int64), None),
        ("GAIAEDR3_SOURCE_ID", "K", 10**18 + np.arange(n, dtype=np.int64), None),
        ("FPARAM", "9E", rng.normal(size=(n, 9)).astype(np.float32), None),
        ("FPARAM_COV", "81E", rng.normal(size=(n, 81)).astype(np.float32), None),
        ("PARAMFLAG", "9K", np.zeros((n, 9), np.int64), None),
        ("FELEM_ERR", "27D", rng.normal(size=(n, 27)), None),
        ("X_H", "27E", rng.normal(size=(n, 27)).astype(np.float32), None),
        ("EXTRATARG", "J", np.array([0, 0, 1, 0, 8, 16], np.int32), None),
        ("TEFF", "E", teff, "K"), ("TEFF_ERR", "E", np.full(n, 60.0, np.float32), "K"),
        ("LOGG", "E", np.array([4.4, 2.5, np.nan, 4.2, 4.6, 4.41], np.float32), "log (cgs)"),
        ("LOGG_ERR", "E", np.full(n, 0.05, np.float32), "log (cgs)"),
        ("M_H", "E", np.full(n, -0.1, np.float32), "dex"), ("M_H_ERR", "E", np.full(n, 0.01, np.float32), "dex"),
        ("FE_H", "E", np.array([-0.12, -0.5, np.nan, 0.1, 0.0, -0.11], np.float32), "dex"),
        ("FE_H_ERR", "E", np.full(n, 0.01, np.float32), "dex"),
        ("VISIT_PK", "100J", np.zeros((n, 100), np.int32), None),
    ])


STARHORSE_DIST = {q: np.array([0.31, 1.2345, 7.5, np.nan], np.float32) * np.float32(f)
                  for q, f in (("05", 0.9), ("16", 0.95), ("50", 1.0), ("84", 1.05), ("95", 1.1))}


def dr17_starhorse(path: Path, dist_unit: str | None = "kpc") -> Path:
    """Four StarHorse DR17 rows as the VAC writes them: one per APOGEE_ID, no TELESCOPE/FIELD, distances in kpc."""
    ids = ["2M00000002+7417074", "2M00000019-1924498", "2M00000032+5737103", "2M00000068+5710233"]
    pct = [(f"{p}{q}", np.full(4, v, np.float32)) for p, v in (("mass", 1.0), ("teff", 5000), ("logg", 3.0),
                                                               ("met", -0.2)) for q in ("16", "50", "84")]
    return fits_file(path, [
        ("APOGEE_ID", "32A", ids, None),
        ("ASPCAP_ID", "77A", [f"apogee.apo25m.synspec_rev1.F.{i}" for i in ids], None),
        ("APSTAR_ID", "71A", [f"apogee.apo25m.stars.F.{i}" for i in ids], None),
        ("EDR3_source_id", "K", 10**18 + np.arange(4, dtype=np.int64), None),
        ("glon", "D", np.array([120.1, 60.2, 114.5, 114.6]), "deg"),
        ("glat", "D", np.array([12, -75, -4, -5.0]), "deg"),
        ("ra", "D", np.array([0.01, 0.08, 0.13, 0.28]), "deg"),
        ("dec", "D", np.array([74.3, -19.4, 57.6, 57.2]), "deg"),
        *[(name, "E", v, None) for name, v in pct],
        *[(f"dist{q}", "E", STARHORSE_DIST[q], dist_unit) for q in ("05", "16", "50", "84", "95")],
        *[(f"AV{q}", "E", np.full(4, 0.3, np.float32), "mag") for q in ("05", "16", "50", "84", "95")],
        ("StarHorse_INPUTFLAGS", "80A", ["TEFF, LOGG, MET, PARALLAX"] * 4, None),
        ("StarHorse_OUTPUTFLAGS", "80A", [""] * 4, None),
    ])


def real_layout(source: str, tmp_path: Path) -> tuple[Path, str, dict]:
    """A small file of `source` in its survey's layout, the query reading it back and what it must return."""
    if source == "apogee-allstar":
        path = dr17_allstar(tmp_path / "allStar-dr17-synspec_rev1.fits")
        return path, ("select apogee_id, telescope, field, teff, logg, extratarg from apogee_star "
                      "where apogee_id = '2M00000002+7417074' order by field"), {
            ("2M00000002+7417074", "apo25m", "118+10"): (np.float32(5810.0), np.float32(4.41), 16),
            ("2M00000002+7417074", "apo25m", "120+12"): (np.float32(5800.5), np.float32(4.4), 0)}
    if source == "starhorse":
        path = dr17_starhorse(tmp_path / "APOGEE_DR17_EDR3_STARHORSE_v2.fits")
        return path, "select apogee_id, telescope, field, dist50_pc from apogee_starhorse where dist50_pc < 1000", {
            ("2M00000002+7417074", None, None): (np.float32(np.float64(STARHORSE_DIST["50"][0]) * 1000),)}
    if source == "distmass":
        ids = ["2M00000002+7417074", "2M00000019-1924498", "2M00000032+5737103"]
        path = fits_file(tmp_path / "APOGEE_DistMass-DR17_v1.6.1.fits", [
            ("APOGEE_ID", "18A", ids, None), ("TELESCOPE", "6A", ["apo25m", "lco25m", "apo25m"], None),
            ("FIELD", "20A", ["120+12", "060-75", "N7789"], None),
            ("TEFF", "E", np.array([4800, 4600, 5000], np.float32), "K"),
            ("LOGG", "E", np.full(3, 2.5, np.float32), None),
            ("M_H", "E", np.zeros(3, np.float32), None),
            ("WEIGHTED_DIST", "E", np.array([1523.5, np.nan, 812.25], np.float32), "pc"),
            ("WEIGHTED_DIST_ERR", "E", np.array([150.0, np.nan, 80.0], np.float32), "pc"),
            ("MASS", "E", np.array([1.1, np.nan, 0.9], np.float32), "Msun"),
            ("AGE_COR_SS", "E", np.full(3, 4e9, np.float32), "yr"),
            ("AGE_ERR", "2E", np.full((3, 2), 0.1, np.float32), None),
            ("BITMASK", "K", np.array([0, 2, 0], np.int64), None)])
        return path, "select apogee_id, telescope, field, weighted_dist, mass from apogee_distmass order by 1", {
            ("2M00000002+7417074", "apo25m", "120+12"): (np.float32(1523.5), np.float32(1.1)),
            ("2M00000019-1924498", "lco25m", "060-75"): (None, None),
            ("2M00000032+5737103", "apo25m", "N7789"): (np.float32(812.25), np.float32(0.9))}
    if source == "astronn":
        ids = ["2M00000002+7417074", "2M00000019-1924498"]
        path = fits_file(tmp_path / "apogee_astroNN-DR17.fits", [
            ("APOGEE_ID", "18A", ids, None), ("TELESCOPE", "6A", ["apo25m", "lco25m"], None),
            ("FIELD", "20A", ["120+12", "060-75"], None), ("RA", "D", np.array([0.0083, 0.0795]), None),
            ("DEC", "D", np.array([74.2854, -19.4138]), None), ("TEFF", "E", np.array([4800, 4600], np.float32), None),
            ("TEFF_ERR", "E", np.full(2, 30, np.float32), None), ("FE_H", "E", np.zeros(2, np.float32), None),
            ("FE_H_ERR", "E", np.full(2, 0.02, np.float32), None),
            ("dist", "D", np.array([2010.0, -9999.0]), None), ("dist_error", "D", np.array([200.0, -9999.0]), None),
            ("nn_parallax", "D", np.array([0.5, np.nan]), None), ("fakemag", "D", np.array([120.0, np.nan]), None),
            ("weighted_dist", "D", np.array([2001.25, -9999.0]), None),
            ("weighted_dist_error", "D", np.array([180.5, -9999.0]), None),
            ("age", "D", np.array([3.2, np.nan]), None), ("galr", "D", np.array([9.1, 8.0]), None)])
        return path, "select apogee_id, telescope, field, weighted_dist, weighted_dist_error from apogee_astronn", {
            ("2M00000002+7417074", "apo25m", "120+12"): (np.float32(2001.25), np.float32(180.5)),
            ("2M00000019-1924498", "lco25m", "060-75"): (None, None)}
    if source == "galah-dr3":
        path = fits_file(tmp_path / "GALAH_DR3_main_allstar_v2.fits", [
            ("star_id", "16A", ["00000002+7417074", "00000019-1924498"], None),
            ("sobject_id", "K", np.array([131116000501002, 140710003401150]), None),
            ("source_id", "K", np.array([5, 6]), None), ("dr3_source_id", "K", np.array([10**18, 10**18 + 1]), None),
            ("ra_dr2", "D", np.array([0.0083, np.nan]), "deg"), ("dec_dr2", "D", np.array([74.2854, np.nan]), "deg"),
            ("snr_c3_iraf", "D", np.array([45.5, 12.0]), None), ("flag_repeat", "K", np.array([0, 1]), None),
            ("teff", "E", np.array([5750.0, np.nan], np.float32), "K"), ("e_teff", "D", np.array([90.0, np.nan]), "K"),
            ("logg", "E", np.array([4.3, np.nan], np.float32), "log(cm s-2)"),
            ("e_logg", "D", np.array([0.2, np.nan]), "log(cm s-2)"),
            ("fe_h", "E", np.array([-0.25, np.nan], np.float32), None), ("e_fe_h", "D", np.array([0.1, np.nan]), None),
            ("flag_fe_h", "K", np.array([0, 1]), None), ("flag_sp", "K", np.array([0, 512]), None),
            ("red_flag", "K", np.array([0, 0]), None), ("vbroad", "E", np.array([5.0, np.nan], np.float32), "km s-1")])
        return path, "select sobject_id, dr3_source_id, ra, teff, logg, flag_sp from galah_star order by 1", {
            (131116000501002, 10**18): (0.0083, np.float32(5750.0), np.float32(4.3), 0),
            (140710003401150, 10**18 + 1): (None, None, None, 512)}
    raise ValueError(source)


@pytest.mark.parametrize("source", ["apogee-allstar", "starhorse", "distmass", "astronn", "galah-dr3"])
def test_real_layouts_go_in(db, tmp_path, source):
    path, sql, expected = real_layout(source, tmp_path)
    with fits.open(path) as hdul:
        n = hdul[1].header["NAXIS2"]
    s = ingest_files(db, source, [path])
    assert (s.read, s.inserted, s.rejected) == (n, n, 0)
    width = len(next(iter(expected)))
    got = {tuple(r[:width]): tuple(r[width:]) for r in fetch(db, sql)}
    assert set(got) == set(expected)

    def same(value, want) -> bool:  # REAL columns compare as float32, the rest exactly
        if want is None or value is None:
            return value is want
        return np.float32(value) == want if isinstance(want, np.float32) else value == want

    for key, want in expected.items():
        assert all(same(v, w) for v, w in zip(got[key], want, strict=True)), (key, got[key], want)


def test_starhorse_kpc_is_stored_in_pc_and_recorded(db, tmp_path):
    path = dr17_starhorse(tmp_path / "APOGEE_DR17_EDR3_STARHORSE_v2.fits")
    s = ingest_files(db, "starhorse", [path])
    assert (s.read, s.inserted) == (4, 4)
    stored = {r.apogee_id: r for r in fetch(db, "select * from apogee_starhorse")}
    for i, apogee_id in enumerate(sorted(stored)):
        for q in ("16", "50", "84"):
            value, kpc = getattr(stored[apogee_id], f"dist{q}_pc"), STARHORSE_DIST[q][i]
            if np.isnan(kpc):
                assert value is None
            else:  # x 1000 in float64, stored REAL
                assert np.float32(value) == np.float32(np.float64(kpc) * 1000.0), (apogee_id, q)
    assert stored["2M00000019-1924498"].dist50_pc == pytest.approx(1234.5, rel=1e-6)
    expected = [{"file": str(path), "column": f"dist{q}", "table_column": f"apogee_starhorse.dist{q}_pc", "from": "kpc",
                 "to": "pc", "factor": 1000.0, "unit_from": "file"} for q in ("16", "50", "84")]  # table order
    assert s.unit_conversions == expected
    assert ("unit conversion", "APOGEE_DR17_EDR3_STARHORSE_v2.fits: dist50 kpc -> pc (x 1000) into "
                               "apogee_starhorse.dist50_pc") in s.rows()
    run = fetch(db, "select parameters, inputs from run")[0]
    assert run.parameters["unit_conversions"] == expected
    assert run.inputs[0]["unit_conversions"] == expected
    # the same file again is skipped; the stored values written in pc take no conversion and change nothing
    assert ingest_files(db, "starhorse", [path]).skipped_files == 1
    in_pc = {q: (STARHORSE_DIST[q].astype(np.float64) * 1000).astype(np.float32) for q in ("16", "50", "84")}
    pc = fits_file(tmp_path / "sh_pc.fits", [("APOGEE_ID", "32A", sorted(stored), None)]
                   + [(f"dist{q}", "E", in_pc[q], "pc") for q in ("16", "50", "84")])
    again = ingest_files(db, "starhorse", [pc])
    assert (again.unit_conversions, again.inserted, again.updated, again.unchanged) == ([], 0, 0, 4)


def test_starhorse_csv_without_units_takes_the_specs_kpc(db, tmp_path):
    path = tmp_path / "starhorse.csv"
    path.write_text("APOGEE_ID,dist50\n2M00000002+7417074,1.5\n")
    s = ingest_files(db, "starhorse", [path])
    assert count(db, "select dist50_pc from apogee_starhorse") == 1500.0
    assert [(c["from"], c["factor"], c["unit_from"]) for c in s.unit_conversions] == [
        ("kpc", 1000.0, "spec (the file states no unit)")]


def test_unit_that_is_no_multiple_is_an_error_and_nothing_is_written(db, tmp_path):
    path = dr17_starhorse(tmp_path / "sh_mag.fits", dist_unit="mag")
    with pytest.raises(BadInput, match=r"sh_mag.fits: column dist16 has unit 'mag', which is not 'pc' or a multiple "
                                       r"of it; expected 'kpc' for apogee_starhorse.dist16_pc"):
        ingest_files(db, "starhorse", [path])
    assert count(db, "select count(*) from apogee_starhorse") == 0
    assert count(db, "select count(*) from run") == 0


# --- idempotency, updates, atomicity --------------------------------------------------------------------

def test_ingest_twice_skips_the_same_file(db, tmp_path):
    table, units = survey_table("gaia-dr3", 50)
    path = write(table, units, tmp_path / "gaia.csv", "csv")
    first = ingest_files(db, "gaia-dr3", [path])
    second = ingest_files(db, "gaia-dr3", [path])
    assert (first.inserted, first.skipped_files) == (50, 0)
    assert (second.read, second.inserted, second.updated, second.skipped_files, second.run_id) == (0, 0, 0, 1, None)
    assert count(db, "select count(*) from gaia_source") == 50
    assert count(db, "select count(*) from run") == 1
    assert fetch(db, "select path, sha256, source, table_name, rows, run_id from ingested_file") == [
        (str(path.resolve()), first.files[0]["sha256"], "gaia-dr3", "gaia_source", 50, first.run_id)]
    labels = dict(second.rows())
    assert labels["skipped (already ingested)"] == "1"


def test_changed_file_updates_its_rows(db, tmp_path):
    table, units = survey_table("bailer-jones", 50)
    path = write(table, units, tmp_path / "bj.csv", "csv")
    ingest_files(db, "bailer-jones", [path])
    med = table.column("r_med_geo").to_numpy().copy()
    med[:3] += 1
    more, _ = survey_table("bailer-jones", 52, seed=0)
    changed = table.set_column(table.column_names.index("r_med_geo"), "r_med_geo", pa.array(med))
    changed = pa.concat_tables([changed, more.slice(50)])
    changed = changed.set_column(0, "source_id", pa.array(
        table.column("source_id").to_pylist() + [1, 2]))
    write(changed, units, path, "csv")
    s = ingest_files(db, "bailer-jones", [path])
    assert (s.read, s.inserted, s.updated, s.unchanged, s.skipped_files) == (52, 2, 3, 47, 0)
    assert s.read == s.inserted + s.updated + s.unchanged + s.rejected
    assert count(db, "select count(*) from gaia_distance") == 52
    # r_med_geo is REAL: float32 keeps 6-7 significant digits
    assert count(db, "select r_med_geo from gaia_distance where source_id = :s",
                 s=table.column("source_id")[0].as_py()) == pytest.approx(float(med[0]), rel=1e-6)
    # going back to the first content is not skipped: that path's latest content differs
    write(table, units, path, "csv")
    back = ingest_files(db, "bailer-jones", [path])
    assert (back.skipped_files, back.updated) == (0, 3)


def _staging_calls(monkeypatch) -> list[str]:
    """Record each staging table the driver creates (the merge route), still creating it."""
    from catalogdb.ingest import files

    calls: list[str] = []

    def spy(cur, target):
        calls.append(target)
        return files_create_staging(cur, target)

    files_create_staging = files.create_staging
    monkeypatch.setattr(files, "create_staging", spy)
    return calls


@pytest.mark.parametrize("source", ["bailer-jones", "apogee-allstar"])
def test_new_keys_into_a_full_table_are_copied_straight_in(db, tmp_path, monkeypatch, source):
    table, units = survey_table(source, 60)
    ingest_files(db, source, [write(table.slice(0, 30), units, tmp_path / "a.csv", "csv")])
    staged = _staging_calls(monkeypatch)
    s = ingest_files(db, source, [write(table.slice(30), units, tmp_path / "b.csv", "csv")])
    assert (s.read, s.inserted, s.updated, s.unchanged, staged) == (30, 30, 0, 0, [])
    key = load_spec(source).key[0]
    assert count(db, f"select count(distinct {key}) from {load_spec(source).table}") == 60


def test_a_key_found_in_a_later_chunk_falls_back_to_the_merge(db, tmp_path, monkeypatch):
    table, units = survey_table("bailer-jones", 60)
    ingest_files(db, "bailer-jones", [write(table.slice(0, 30), units, tmp_path / "a.csv", "csv")])
    monkeypatch.setattr("catalogdb.readers.CHUNK_ROWS", 10)
    staged = _staging_calls(monkeypatch)
    # rows 30..59 (new; the first chunk has a row without a key, rejected), then rows 0..4 again, row 0 changed
    later = table.slice(0, 5).to_pylist()
    later[0]["r_med_geo"] += 1
    rows = table.slice(30).to_pylist()
    rows[2]["source_id"] = None
    path = write(pa.Table.from_pylist(rows + later, schema=table.schema), units, tmp_path / "b.csv", "csv")
    s = ingest_files(db, "bailer-jones", [path], on_error="skip")
    assert (s.read, s.inserted, s.updated, s.unchanged, s.rejected) == (35, 29, 1, 4, 1)
    assert staged == ['"gaia_distance"']
    assert len(path.with_name("b.csv.rejects.csv").read_text().splitlines()) == 2  # header and the bad row once
    assert count(db, "select count(*) from gaia_distance") == 59


def test_a_file_that_starts_with_known_keys_is_merged_without_a_direct_copy(db, tmp_path, monkeypatch):
    table, units = survey_table("gaia-dr3", 40)
    ingest_files(db, "gaia-dr3", [write(table.slice(0, 20), units, tmp_path / "a.csv", "csv")])
    from catalogdb.ingest import files

    copies: list[str] = []
    real_copy = files.copy_batches
    monkeypatch.setattr(files, "copy_batches", lambda cur, t, *a: copies.append(t) or real_copy(cur, t, *a))
    s = ingest_files(db, "gaia-dr3", [write(table, units, tmp_path / "b.csv", "csv")])
    assert (s.inserted, s.unchanged, copies) == (20, 20, ["_ingest_staging"])


def test_several_files_one_transaction(db, tmp_path):
    table, units = survey_table("gaia-dr3", 40)
    good = write(table.slice(0, 20), units, tmp_path / "a.csv", "csv")
    bad = tmp_path / "b.csv"
    rows = table.slice(20).to_pylist()
    rows[5]["ra"] = 400.0
    write(pa.Table.from_pylist(rows, schema=table.schema), units, bad, "csv")
    with pytest.raises(BadInput, match=r"b.csv: row 6, column ra: value '400'"):
        ingest_files(db, "gaia-dr3", [good, bad])
    assert count(db, "select count(*) from gaia_source") == 0  # the good file was rolled back too
    assert count(db, "select count(*) from ingested_file") == 0
    # only the failure is recorded, with the files it was given
    failed = fetch(db, "select command, status, inputs from run")
    assert [(r[0], r[1], [Path(f["path"]).name for f in r[2]]) for r in failed] == [
        ("ingest", "failed", ["a.csv", "b.csv"])]
    s = ingest_files(db, "gaia-dr3", [good, bad], on_error="skip")
    assert (s.read, s.inserted, s.rejected) == (40, 39, 1)
    assert s.reject_file == bad.with_name("b.csv.rejects.csv")


def test_progress_reports_rows(db, tmp_path):
    table, units = survey_table("lamost-stellar", 40)
    path = write(table, units, tmp_path / "lamost.fits", "fits")
    seen = []
    ingest_files(db, "lamost-stellar", [path], progress=lambda step, done, total: seen.append((step, done, total)))
    assert ("lamost.fits", 40, 40) in seen


# --- bad input -------------------------------------------------------------------------------------------

def _nothing_written(db):
    assert count(db, "select count(*) from gaia_source") == 0
    assert count(db, "select count(*) from ingested_file") == 0
    assert count(db, "select count(*) from run where status <> 'failed'") == 0  # a failure is recorded, no more


def test_bad_files(db, tmp_path):
    table, units = survey_table("gaia-dr3", 40)
    cases = []
    fits_path = write(table, units, tmp_path / "gaia.fits", "fits")
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(fits_path.read_bytes()[:-2880 - 100])
    cases.append((truncated, r"truncated.fits: the file is truncated: HDU 1 declares 40 rows"))
    gz = write(table, units, tmp_path / "gaia.csv.gz", "csv.gz")
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])
    cases.append((cut, r"cut.csv.gz: .*(truncated|corrupt|decompress)"))
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((5, 10), np.float32)).writeto(image)
    cases.append((image, r"image.fits: not a table: the FITS file has no HDU 1"))
    junk = tmp_path / "junk.dat"
    junk.write_bytes(bytes(range(256)) * 4)
    cases.append((junk, r"junk.dat: not a table: unrecognised binary file"))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    cases.append((empty, r"empty.csv: the file is empty"))
    missing = write(table.drop_columns(["parallax", "bp_rp"]), units, tmp_path / "nopar.csv", "csv")
    cases.append((missing, r"nopar.csv: missing required columns parallax, bp_rp; expected a Gaia DR3"))
    units_bad = write(table, {**units, "distance_gspphot": "mag"}, tmp_path / "mag.ecsv", "ecsv")
    cases.append((units_bad, r"mag.ecsv: column distance_gspphot has unit 'mag', which is not 'pc' or a multiple "
                             r"of it; expected 'pc' for gaia_source.distance_gspphot"))
    cases.append((tmp_path / "nothere.csv", r"nothere.csv: no such file"))
    for path, message in cases:
        with pytest.raises(BadInput, match=message):
            ingest_files(db, "gaia-dr3", [path])
        _nothing_written(db)


def _bad_gaia_csv(tmp_path) -> Path:
    table, units = survey_table("gaia-dr3", 40)
    sink = pa.BufferOutputStream()
    pcsv.write_csv(table, sink)
    lines = sink.getvalue().to_pybytes().decode().splitlines()
    header = lines[0].replace('"', "").split(",")
    ra, par, sid = header.index("ra"), header.index("parallax"), header.index("source_id")

    def edit(row: int, col: int, value: str) -> None:
        fields = lines[row].split(",")
        fields[col] = value
        lines[row] = ",".join(fields)

    edit(3, par, "1.2.3")       # data row 3: unparsable number
    edit(7, ra, "361.5")        # row 7: RA outside [0, 360]
    edit(9, ra, "nan")          # row 9: NaN coordinate
    edit(12, sid, lines[2].split(",")[sid])  # row 12 repeats the key of row 2
    lines[15] = lines[15] + ",999"  # row 15: a field too many
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_values_abort_names_file_row_column_value(db, tmp_path):
    path = _bad_gaia_csv(tmp_path)
    with pytest.raises(BadInput, match=r"bad.csv: row 3, column parallax: value '1.2.3' is not a number"):
        ingest_files(db, "gaia-dr3", [path])
    _nothing_written(db)


@pytest.mark.parametrize("edit,message", [
    ({"ra": "-0.5"}, r"row 2, column ra: value '-0.5' is not a right ascension in \[0, 360\] deg"),
    ({"dec": "-91"}, r"row 2, column dec: value '-91' is not a declination in \[-90, 90\] deg"),
    ({"dec": ""}, r"row 2, column dec: value '' is not a declination"),
    ({"source_id": "12x"}, r"row 2, column source_id: value '12x' is not a number \(int64\)"),
    ({"source_id": "dup"}, r"row 2, column source_id: value '\d+' duplicates the key of row 1"),
])
def test_each_bad_value_message(db, tmp_path, edit, message):
    table, units = survey_table("gaia-dr3", 5)
    rows = [{k: (None if v is None else str(v)) for k, v in r.items()} for r in table.to_pylist()]
    for k, v in edit.items():
        rows[1][k] = rows[0][k] if v == "dup" else v
    path = tmp_path / "one.csv"
    pcsv.write_csv(pa.Table.from_pylist(rows), path)
    with pytest.raises(BadInput, match="one.csv: " + message):
        ingest_files(db, "gaia-dr3", [path])
    _nothing_written(db)


def test_bad_values_skip_writes_rejects(db, tmp_path):
    path = _bad_gaia_csv(tmp_path)
    s = ingest_files(db, "gaia-dr3", [path], on_error="skip")
    assert (s.read, s.rejected, s.inserted) == (40, 5, 35)  # the malformed line counts as read and rejected
    assert s.reject_file == tmp_path / "bad.csv.rejects.csv"
    rejects = pcsv.read_csv(s.reject_file, convert_options=pcsv.ConvertOptions(
        column_types={"value": pa.string()})).to_pylist()
    assert sorted(r["row"] for r in rejects) == [3, 7, 9, 12, 15]
    by_row = {r["row"]: r for r in rejects}
    assert by_row[7]["column"] == "ra" and by_row[7]["value"] == "361.5"
    assert "duplicates the key of row 2" in by_row[12]["reason"]
    assert "fields, expected" in by_row[15]["reason"]
    assert count(db, "select count(*) from gaia_source") == 35
    assert count(db, "select row_counts->>'rejected' from run") == "5"
    assert ("reject file", str(s.reject_file)) in s.rows()
    assert s.read == s.inserted + s.updated + s.unchanged + s.rejected


# --- the mock survey ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mock_survey(tmp_path_factory) -> Path:
    from catalogdb.mock import write_survey

    out = tmp_path_factory.mktemp("mock")
    write_survey(out, stars=1500, seed=3, spectra="none")
    return out


def test_mock_survey_files(db, mock_survey):
    files = {"lamost-stellar": mock_survey / "lamost" / "dr9_v2.0_LRS_stellar.fits",
             "gaia-dr3": mock_survey / "gaia" / "gaia_dr3_source.csv",
             "bailer-jones": mock_survey / "gaia" / "bailer_jones_edr3.csv",
             "apogee-allstar": mock_survey / "apogee" / "allStar-dr17-synspec_rev1.fits"}
    for source, path in files.items():
        spec = load_spec(source)
        if detect_format(path).startswith("fits"):
            with fits.open(path) as hdul:
                n = hdul[1].header["NAXIS2"]
        else:
            n = sum(1 for _ in open(path)) - 1
        s = ingest_files(db, source, [path])
        assert (s.read, s.inserted, s.rejected) == (n, n, 0), source
        assert count(db, f"select count(*) from {spec.table}") == n
    with fits.open(files["lamost-stellar"]) as hdul:
        data = hdul[1].data
        assert count(db, "select count(*) from lamost_star where teff is null") == int((data["teff"] == -9999).sum())
        assert count(db, "select count(*) from lamost_star where alpha_m is null") == int(
            (data["alpha_m"] == -9999).sum())
    with fits.open(files["apogee-allstar"]) as hdul:
        assert hdul[1].columns["PARAM"].format.repeat > 1  # an array column the loader never reads
        assert count(db, "select count(*) from apogee_star where teff is null") == int(
            np.isnan(hdul[1].data["TEFF"]).sum())


def test_mock_comparison_files(db, mock_survey):
    from catalogdb.mock.comparisons import SOURCES

    for source, name in SOURCES.items():
        with fits.open(mock_survey / name) as hdul:
            n = hdul[1].header["NAXIS2"]
        s = ingest_files(db, source, [mock_survey / name])
        assert (s.read, s.inserted, s.rejected) == (n, n, 0), source
        # only StarHorse writes another unit than the table's: its kpc distances
        assert [c["column"] for c in s.unit_conversions] == (["dist16", "dist50", "dist84"]
                                                             if source == "starhorse" else []), source
    with fits.open(mock_survey / SOURCES["starhorse"]) as hdul:
        data = hdul[1].data
        kpc = dict(zip(np.char.strip(data["APOGEE_ID"].astype(str)), data["dist50"], strict=True))
    stored = dict(fetch(db, "select apogee_id, dist50_pc from apogee_starhorse"))
    assert stored.keys() == kpc.keys()
    assert all((stored[k] is None) == bool(np.isnan(v)) for k, v in kpc.items())
    assert all(np.float32(stored[k]) == np.float32(np.float64(v) * 1000) for k, v in kpc.items() if np.isfinite(v))


# --- the command line: exit codes, one-line errors, SIGKILL half-way ----------------------------------------

def _cli(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "CATALOGDB_URL": url}
    return subprocess.run([sys.executable, "-m", "catalogdb.cli", "ingest", *args], env=env, capture_output=True,
                          text=True, timeout=300, **kw)


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_cli_ingest_and_bad_input(db, tmp_path):
    table, units = survey_table("bailer-jones", 30)
    path = write(table, units, tmp_path / "bj.vot", "votable")
    done = _cli(_url(db), "bailer-jones", str(path))
    assert done.returncode == 0, done.stderr
    assert "inserted" in done.stdout and "30" in done.stdout
    bad = _cli(_url(db), "bailer-jones", str(tmp_path / "missing.csv"))
    assert bad.returncode == 2
    assert "missing.csv: no such file" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_sigkill_half_way_leaves_tables_as_they_were(db, tmp_path):
    n = 400_000
    rng = np.random.default_rng(5)
    big = pa.table({"source_id": pa.array(rng.permutation(n).astype(np.int64) + 10**15),
                    **{k: pa.array(rng.uniform(100, 900, n).astype(np.float32))
                       for k in ("r_med_geo", "r_lo_geo", "r_hi_geo", "r_med_photogeo", "r_lo_photogeo",
                                 "r_hi_photogeo")},
                    "flag": pa.array(np.full(n, "10033"))})
    path = tmp_path / "big.csv"
    pcsv.write_csv(big, path)
    url = _url(db)
    env = {**os.environ, "CATALOGDB_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "catalogdb.cli", "ingest", "bailer-jones", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    copied = 0
    while time.time() < deadline and proc.poll() is None:
        copied = count(db, "select coalesce(max(tuples_processed), 0) from pg_stat_progress_copy "
                           "where datname = current_database()")
        if copied > 0:
            break
        time.sleep(0.05)
    assert proc.poll() is None and copied > 0, "the ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for _ in range(100):  # the server notices the dropped connection and rolls back
        if count(db, "select count(*) from pg_stat_activity where datname = current_database() "
                     "and pid <> pg_backend_pid()") == 0:
            break
        time.sleep(0.1)
    assert count(db, "select count(*) from gaia_distance") == 0
    assert count(db, "select count(*) from run") == 0
    done = _cli(url, "bailer-jones", str(path))
    assert done.returncode == 0, done.stderr
    assert count(db, "select count(*) from gaia_distance") == n
    assert count(db, "select count(distinct source_id) from gaia_distance") == n
    assert count(db, "select (row_counts->>'inserted')::int from run") == n


def test_summary_rows_shape():
    s = IngestSummary(source="gaia-dr3", read=3, inserted=2, updated=1, run_id=7)
    labels = dict(s.rows())
    assert labels["inserted"] == "2" and labels["run"] == "7"
