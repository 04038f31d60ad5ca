"""Crossmatch and sample views on the mock survey: pairs equal astropy, cut-flow equals pandas."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from astropy.coordinates import SkyCoord
from astropy.table import Table
from zero_point import zpt

from catalogdb.db import admin
from catalogdb.ingest.files import ingest_files
from catalogdb.mock import CATALOGUE_FILES, write_survey
from catalogdb.xmatch import run_xmatch
from conftest import FIXTURES, create_database


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("mock")
    write_survey(out, stars=1500, seed=7, spectra="none")
    return out


def load(server: str, mode: str, survey) -> sa.Engine:
    engine = sa.create_engine(create_database(server))
    admin.init(engine, mode)
    for source, path in CATALOGUE_FILES.items():
        ingest_files(engine, source, [survey / path])
    run_xmatch(engine, jobs=2)
    return engine


@pytest.fixture(scope="module", params=["embedded-compat", "pg15-extension"])
def matched(request, survey):
    server = request.getfixturevalue("embedded_server" if request.param.startswith("embedded") else "pg15_server")
    engine = load(server, "compat" if "compat" in request.param else "extension", survey)
    yield engine
    engine.dispose()


def lamost_frame(survey) -> pd.DataFrame:
    table = Table.read(survey / CATALOGUE_FILES["lamost-stellar"], hdu=1)
    frame = table.to_pandas()
    for column in ("teff", "logg", "feh", "snrg"):
        frame[column] = frame[column].where(frame[column] != -9999)
    return frame


def pairs_astropy(left: pd.DataFrame, right: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    a = SkyCoord(left["ra"].to_numpy() * u.deg, left["dec"].to_numpy() * u.deg)
    b = SkyCoord(right["ra"].to_numpy() * u.deg, right["dec"].to_numpy() * u.deg)
    in_right, in_left, sep, _ = a.search_around_sky(b, radius_arcsec * u.arcsec)
    return pd.DataFrame({"left": in_left, "right": in_right, "sep": sep.to_value(u.arcsec)})


def test_pairs_equal_search_around_sky(matched, survey):
    lamost = lamost_frame(survey)
    gaia = pd.read_csv(survey / CATALOGUE_FILES["gaia-dr3"])
    apogee = Table.read(survey / CATALOGUE_FILES["apogee-allstar"], hdu=1)
    apogee = pd.DataFrame({"apogee_id": np.char.strip(np.asarray(apogee["APOGEE_ID"], dtype=str)),
                           "ra": apogee["RA"], "dec": apogee["DEC"]})
    with matched.connect() as conn:
        ours_gaia = set(conn.execute(sa.text("select obsid, source_id from xmatch_lamost_gaia")).all())
        ours_apogee = set(conn.execute(sa.text("select obsid, apogee_id from xmatch_lamost_apogee")).all())
        seps = conn.execute(sa.text("select max(sep_arcsec), count(*) filter (where best) = count(distinct obsid) "
                                    "from xmatch_lamost_gaia")).one()
    pg = pairs_astropy(gaia, lamost, 3.0)
    theirs_gaia = set(zip(lamost["obsid"].to_numpy()[pg["right"]], gaia["source_id"].to_numpy()[pg["left"]],
                          strict=True))
    pa = pairs_astropy(apogee, lamost, 1.0)
    theirs_apogee = set(zip(lamost["obsid"].to_numpy()[pa["right"]], apogee["apogee_id"].to_numpy()[pa["left"]],
                            strict=True))
    assert len(ours_gaia) > 1000 and len(ours_apogee) > 100
    assert ours_gaia == {(int(a), int(b)) for a, b in theirs_gaia}
    assert ours_apogee == {(int(a), str(b)) for a, b in theirs_apogee}
    assert seps[0] < 3.0 and seps[1]  # 3 arcsec: the Gaia match radius


def test_cutflow_equals_pandas(matched, survey):
    lamost = lamost_frame(survey)
    gaia = pd.read_csv(survey / CATALOGUE_FILES["gaia-dr3"])
    bj = pd.read_csv(survey / CATALOGUE_FILES["bailer-jones"])
    allstar = Table.read(survey / CATALOGUE_FILES["apogee-allstar"], hdu=1)
    apogee = pd.DataFrame({k.lower(): np.asarray(allstar[k], dtype=float)
                           for k in ("RA", "DEC", "TEFF", "LOGG", "FE_H")})
    apogee["duplicate"] = (np.asarray(allstar["EXTRATARG"]) & 16) != 0

    def solar(teff, logg, feh):
        return (teff >= 4800) & (teff <= 6800) & (feh >= -1) & (feh <= 1) & (logg >= 5.98 - 0.00035 * teff)

    def nearest(right: pd.DataFrame, radius: float) -> pd.DataFrame:
        p = pairs_astropy(right, sl, radius)
        # an allStar duplicate (EXTRATARG bit 4) loses to any primary entry, then the nearest wins
        p["duplicate"] = right["duplicate"].to_numpy()[p["left"]] if "duplicate" in right else False
        p = p.sort_values(["right", "duplicate", "sep", "left"]).drop_duplicates("right")
        return pd.DataFrame({"obsid": sl["obsid"].to_numpy()[p["right"]], "k": p["left"].to_numpy()})

    sl = lamost[solar(lamost.teff, lamost.logg, lamost.feh)].reset_index(drop=True)
    ap = nearest(apogee, 1.0).merge(apogee, left_on="k", right_index=True)
    ap = ap.merge(sl[["obsid", "snrg", "fibermask"]], on="obsid")
    ap["ok"] = solar(ap.teff, ap.logg, ap.fe_h)
    ga = nearest(gaia, 3.0).merge(gaia, left_on="k", right_index=True).merge(bj, on="source_id", how="left")
    ga["mg"] = ga.phot_g_mean_mag - 5 * np.log10(ga.r_med_geo) + 5 - ga.ag_gspphot
    ga["bprp0"] = ga.bp_rp - ga.ebpminrp_gspphot
    both = ap[ap.ok].merge(ga[["obsid", "parallax_over_error", "mg", "bprp0"]], on="obsid", how="left")
    good = both[both.parallax_over_error > 5]
    good = good[(good.snrg > 10) & (good.fibermask == 0)]
    expected = [len(lamost), len(sl), len(ap), int(ap.ok.sum()), int(both.obsid.isin(ga.obsid).sum()),
                len(both[both.parallax_over_error > 5]), len(good),
                int((good.mg.notna() & good.bprp0.notna() & good.teff.notna()).sum()), 0]
    with matched.connect() as conn:
        ours = [r.count for r in conn.execute(sa.text("select count from training_cutflow order by stage"))]
    assert ours == expected


def package_zpt(g, nu_eff, pseudocolour, ecl_lat, solved) -> float:
    """gaiadr3-zeropoint's own value for one row, as the package returns it by default (warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(zpt.get_zpt(*(np.array([v], dtype=float) for v in (g, nu_eff, pseudocolour, ecl_lat, solved)))[0])


def test_zero_point_equals_the_package_on_real_rows(embedded_server):
    engine = sa.create_engine(create_database(embedded_server))
    admin.init(engine, "compat")
    ingest_files(engine, "gaia-dr3", [FIXTURES / "gaia" / "gaia_dr3_cone_280_m60.ecsv"])
    with engine.begin() as conn:
        conn.execute(sa.text("insert into lamost_star (obsid, ra, dec) select row_number() over (), ra, dec "
                             "from gaia_source"))
    run_xmatch(engine, jobs=1)
    rows = Table.read(FIXTURES / "gaia" / "gaia_dr3_cone_280_m60.ecsv")
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("select source_id, parallax_zeropoint from gaia_source")).all())
    zpt.load_tables()
    solved = np.asarray(rows["astrometric_params_solved"])
    assert set(solved) - {31, 95}, "the fixture should include a 2-parameter solution (no zero point)"
    for row in rows:
        value = stored[int(row["source_id"])]
        if row["astrometric_params_solved"] not in (31, 95):
            assert value is None
            continue
        expected = package_zpt(*(float(row[c]) for c in ("phot_g_mean_mag", "nu_eff_used_in_astrometry",
                                                          "pseudocolour", "ecl_lat")), row["astrometric_params_solved"])
        # inputs REAL as in the ECSV; the zero point (~0.01-0.1 mas) is stored REAL: a few 1e-9 mas of rounding
        assert value == pytest.approx(expected, abs=1e-6) if np.isfinite(expected) else value is None
    engine.dispose()


# (source_id, G, nu_eff, pseudocolour, ecl_lat, astrometric_params_solved, clamped: True/False, None = no value)
ZPT_ROWS = [
    (1, 17.2, None, 1.80, 35.0, 95, True),    # 6-p, pseudocolour above 1.72
    (2, 17.2, None, 1.10, -20.0, 95, True),   # 6-p, pseudocolour below 1.24
    (3, 16.0, None, 1.50, 10.0, 95, False),   # 6-p inside
    (4, 12.3, 1.55, None, 60.0, 31, False),   # 5-p inside
    (5, 21.4, 1.50, None, 5.0, 31, True),     # 5-p, G beyond 21
    (6, 5.5, 1.45, None, -45.0, 31, True),    # 5-p, G brighter than 6
    (7, 15.0, 1.95, None, 0.0, 31, True),     # 5-p, nu_eff beyond 1.9
    (8, 15.0, None, None, 0.0, 31, None),     # 5-p without nu_eff: the package gives NaN
    (9, 15.0, None, None, 0.0, 95, None),     # 6-p without pseudocolour: NaN
    (10, 15.0, None, None, 0.0, 3, None),     # 2-parameter solution: no zero point at all
]


def test_zero_points_keep_the_packages_clamped_values(embedded_server):
    engine = sa.create_engine(create_database(embedded_server))
    admin.init(engine, "compat")
    with engine.begin() as conn:
        for sid, g, nu, pc, lat, solved, _ in ZPT_ROWS:
            conn.execute(sa.text(
                "insert into gaia_source (source_id, ra, dec, phot_g_mean_mag, nu_eff_used_in_astrometry, "
                "pseudocolour, ecl_lat, astrometric_params_solved) values (:s, :ra, 10, :g, :nu, :pc, :lat, :solved)"),
                {"s": sid, "ra": 10.0 * sid, "g": g, "nu": nu, "pc": pc, "lat": lat, "solved": solved})
            conn.execute(sa.text("insert into lamost_star (obsid, ra, dec) values (:s, :ra, 10)"),
                         {"s": sid, "ra": 10.0 * sid})
    summary = run_xmatch(engine, jobs=1)
    with engine.connect() as conn:
        stored = {r.source_id: r for r in conn.execute(sa.text(
            "select source_id, phot_g_mean_mag, nu_eff_used_in_astrometry, pseudocolour, ecl_lat, "
            "astrometric_params_solved, parallax_zeropoint, zpt_valid, zpt_clamped from gaia_source"))}
    zpt.load_tables()
    for sid, *_, clamped in ZPT_ROWS:
        r = stored[sid]
        inputs = [np.nan if v is None else v for v in (r.phot_g_mean_mag, r.nu_eff_used_in_astrometry,
                                                        r.pseudocolour, r.ecl_lat)]
        assert r.zpt_clamped is clamped, sid
        if clamped is None:
            assert r.parallax_zeropoint is None and r.zpt_valid is False, sid
            continue
        expected = package_zpt(*inputs, r.astrometric_params_solved)
        assert np.float32(r.parallax_zeropoint) == np.float32(expected), sid  # the package's own number, stored REAL
        assert r.zpt_valid is (not clamped), sid
        if clamped:  # with its warnings off the package gives NaN there: what catalogdb stored before
            quiet = zpt.get_zpt(*(np.array([v]) for v in inputs), np.array([r.astrometric_params_solved]),
                                _warnings=False)[0]
            assert np.isnan(quiet) and expected != 0, sid
    # pseudocolour beyond either limit holds the value at the limit (Lindegren et al. 2021, 6-p)
    edge = package_zpt(17.2, np.nan, np.float32(1.72), 35.0, 95)
    assert np.float32(stored[1].parallax_zeropoint) == np.float32(edge)
    assert (summary.zeropoints, summary.zeropoints_clamped, summary.zeropoints_invalid) == (10, 5, 3)
    assert ("parallax zero points", "10 (5 clamped outside the calibrated range, 3 without a value)") in summary.rows()
    engine.dispose()


def test_duplicate_entry_never_wins_the_best_match(embedded_server):
    engine = sa.create_engine(create_database(embedded_server))
    admin.init(engine, "compat")
    arcsec = 1 / 3600
    stars = [  # (apogee_id, telescope, field, offset in dec (arcsec), EXTRATARG)
        ("2M00400000+2000000", "apo25m", "120+12", 0.6, 0),     # primary entry of the star
        ("2M00400000+2000000", "lco25m", "118+10", 0.2, 16),    # its duplicate, nearer to the LAMOST position
        ("2M00400000+2000000", "apo1m", "calibration", 0.1, 24),  # another duplicate (bits 3 and 4)
        ("2M00400100+2000000", "apo25m", "120+12", 0.5, 0),      # a different star, nearer than the primary
        ("2M00500000+2000000", "apo25m", "120+12", 0.3, 16),     # a star seen only as a duplicate
    ]
    with engine.begin() as conn:
        conn.execute(sa.text("insert into lamost_star (obsid, ra, dec) values (1, 10, 20), (2, 12.5, 20)"))
        for apogee_id, tel, field, off, extratarg in stars:
            ra = 12.5 if apogee_id.startswith("2M005") else 10.0
            conn.execute(sa.text(
                "insert into apogee_star (apogee_id, telescope, field, ra, dec, extratarg) "
                "values (:a, :t, :f, :ra, :dec, :e)"),
                {"a": apogee_id, "t": tel, "f": field, "ra": ra, "dec": 20 + off * arcsec, "e": extratarg})
    run_xmatch(engine, jobs=2)
    with engine.connect() as conn:
        got = conn.execute(sa.text("select obsid, apogee_id, telescope, field, sep_arcsec, rank, best "
                                   "from xmatch_lamost_apogee order by obsid, rank")).all()
    one = [r for r in got if r.obsid == 1]
    assert [(r.apogee_id, r.field) for r in one] == [
        ("2M00400100+2000000", "120+12"),  # nearest primary entry wins, whatever the star
        ("2M00400000+2000000", "120+12"),
        ("2M00400000+2000000", "calibration"),  # the duplicates last, nearest first
        ("2M00400000+2000000", "118+10")]
    assert [r.best for r in one] == [True, False, False, False] and [r.rank for r in one] == [1, 2, 3, 4]
    # the duplicates are the nearest pairs: by separation alone one of them would have been best
    assert min(r.sep_arcsec for r in one[2:]) < min(r.sep_arcsec for r in one[:2])
    assert [(r.apogee_id, r.best) for r in got if r.obsid == 2] == [("2M00500000+2000000", True)]
    engine.dispose()
