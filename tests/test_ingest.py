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
from catalogdb.load import IngestSummary, encode_binary, ingest_files, load_spec, sources, units_match
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
    assert count(db, "select count(*) from run") == 0
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
    assert count(db, "select count(*) from run") == 0


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
    units_bad = write(table, {**units, "distance_gspphot": "kpc"}, tmp_path / "kpc.ecsv", "ecsv")
    cases.append((units_bad, r"kpc.ecsv: column distance_gspphot has unit 'kpc'; expected 'pc'"))
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
