"""The sample views as q3c tests them: rows in, expected rows out; and the upgrade from the previous release.

Each training candidate below is built to stop at one stage of the cut-flow, so every cut is exercised by
one row and the counts are known by construction.
"""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from catalogdb.db import migrate, q3c
from conftest import create_database

PREVIOUS_RELEASE = "0016"  # the head of the last release: the database an astronomer upgrades from

# obsid: (LASP teff, logg, feh) of LAMOST; (ASPCAP teff, logg, fe_h) or None for no APOGEE match;
# (parallax_over_error, r_med_geo) or None for no Gaia match; snrg; spectrum stored; the stage it stops at.
SOLAR = (5700.0, 4.4, 0.0)
STARS = {
    1: (SOLAR, (4700.0, 4.6, 0.0), (10.0, 500.0), 20.0, True, 3),   # ASPCAP Teff below 4800 K
    2: (SOLAR, SOLAR, None, 20.0, True, 4),                          # no Gaia DR3 match
    3: (SOLAR, SOLAR, (4.0, 500.0), 20.0, True, 5),                  # parallax_over_error <= 5
    4: (SOLAR, SOLAR, (10.0, 500.0), 8.0, True, 6),                  # S/N_g <= 10
    5: (SOLAR, SOLAR, (10.0, None), 20.0, True, 7),                  # no r_med_geo: no M_G label
    6: (SOLAR, SOLAR, (10.0, 500.0), 20.0, False, 8),                # no preprocessed spectrum
    7: (SOLAR, SOLAR, (10.0, 500.0), 20.0, True, 9),                 # every cut passed: training_set
    8: ((5000.0, 3.0, 0.0), SOLAR, (10.0, 500.0), 20.0, True, None),  # a LASP giant: not in solar_like
    9: (SOLAR, None, (10.0, 500.0), 20.0, True, 2),                  # no APOGEE match
}


def insert_stars(conn: sa.Connection) -> None:
    """The rows above, written into the survey and crossmatch tables with plain SQL."""
    for obsid, (lasp, aspcap, gaia, snrg, has_spectrum, _) in STARS.items():
        ra, dec = 10.0 + obsid, 20.0
        conn.execute(sa.text(
            "INSERT INTO lamost_star (obsid, uid, ra, dec, snrg, fibermask, teff, logg, feh) "
            "VALUES (:o, :u, :ra, :dec, :snrg, 0, :t, :g, :f)"),
            {"o": obsid, "u": f"star{obsid}", "ra": ra, "dec": dec, "snrg": snrg, "t": lasp[0], "g": lasp[1],
             "f": lasp[2]})
        if aspcap is not None:
            conn.execute(sa.text(
                "INSERT INTO apogee_star (apogee_id, telescope, field, ra, dec, teff, logg, fe_h) "
                "VALUES (:a, 'apo25m', 'f', :ra, :dec, :t, :g, :f)"),
                {"a": f"2M{obsid}", "ra": ra, "dec": dec, "t": aspcap[0], "g": aspcap[1], "f": aspcap[2]})
            conn.execute(sa.text(
                "INSERT INTO xmatch_lamost_apogee VALUES (:o, :a, 'apo25m', 'f', 0.1, 1, true, 1)"),
                {"o": obsid, "a": f"2M{obsid}"})
        if gaia is not None:
            conn.execute(sa.text(
                "INSERT INTO gaia_source (source_id, ra, dec, parallax, parallax_over_error, phot_g_mean_mag, "
                "bp_rp, ag_gspphot, ebpminrp_gspphot, distance_gspphot) "
                "VALUES (:s, :ra, :dec, 2.0, :poe, 12.0, 0.8, 0.1, 0.05, 500)"),
                {"s": 1000 + obsid, "ra": ra, "dec": dec, "poe": gaia[0]})
            if gaia[1] is not None:
                conn.execute(sa.text("INSERT INTO gaia_distance (source_id, r_med_geo) VALUES (:s, :d)"),
                             {"s": 1000 + obsid, "d": gaia[1]})
            conn.execute(sa.text("INSERT INTO xmatch_lamost_gaia VALUES (:o, :s, 0.2, 1, true, 1)"),
                         {"o": obsid, "s": 1000 + obsid})
        if has_spectrum:
            conn.execute(sa.text(
                "INSERT INTO spectrum (obsid, flux, flag, snrg, path, checksum, run_id) "
                "VALUES (:o, '\\x00'::bytea, 0, :snrg, 'x.fits', 'c', 1)"), {"o": obsid, "snrg": snrg})


def expected_cutflow() -> list[tuple[int, int]]:
    """(stage, count): a candidate stopping at stage k counts in stages 3..k; stages 1, 2 count LAMOST rows."""
    stops = [s[-1] for s in STARS.values()]
    counts = {1: len(STARS), 2: sum(s is not None for s in stops)}
    counts |= {k: sum(s is not None and s >= k for s in stops) for k in range(3, 10)}
    return sorted(counts.items())


def sample_results(conn: sa.Connection) -> dict:
    """What the views give for the rows above."""
    return {
        "solar_like": sorted(conn.execute(sa.text("SELECT obsid FROM solar_like")).scalars()),
        "cutflow": [tuple(r) for r in conn.execute(sa.text(
            "SELECT stage, count FROM training_cutflow ORDER BY stage"))],
        "training_set": [tuple(r) for r in conn.execute(sa.text(
            "SELECT obsid, teff, logg, feh, round(mg::numeric, 6), round(bprp0::numeric, 6) FROM training_set"))],
        "gradient_radial": conn.execute(sa.text("SELECT count(*) FROM gradient_radial")).scalar(),
    }


def _database(server: str, revision: str = "head") -> sa.Engine:
    engine = sa.create_engine(create_database(server, "views"))
    with engine.begin() as conn:
        q3c.ensure(conn, "compat")
    migrate.upgrade(engine, revision)
    return engine


@pytest.fixture(scope="module")
def engine(embedded_server):
    eng = _database(embedded_server)
    with eng.begin() as conn:
        insert_stars(conn)
    yield eng
    eng.dispose()


def test_is_solar_like_follows_table_1_at_its_edges(engine):
    cases = {(4800, 5.0, 0.0): True, (4799.9, 5.0, 0.0): False, (6800, 3.7, 0.0): True, (6800.1, 5.0, 0.0): False,
             (5000, 4.24, 0.0): True, (5000, 4.22, 0.0): False,  # the line: 5.98 - 0.00035 * 5000 = 4.23
             (5700, 4.4, -1.0): True, (5700, 4.4, 1.0): True, (5700, 4.4, 1.01): False, (5700, 4.4, -1.01): False,
             (None, 4.4, 0.0): None}
    with engine.connect() as conn:
        got = {k: conn.execute(sa.text("SELECT is_solar_like(:t, :g, :f)"), dict(zip("tgf", k, strict=True))).scalar()
               for k in cases}
    assert got == cases


def test_each_candidate_stops_at_its_stage(engine):
    with engine.connect() as conn:
        stages = dict(conn.execute(sa.text("SELECT obsid, stage FROM training_stage")).all())
    assert stages == {o: s[-1] for o, s in STARS.items() if s[-1] is not None and s[-1] >= 3}


def test_cutflow_and_training_set_read_the_same_stages(engine):
    with engine.connect() as conn:
        got = sample_results(conn)
    assert got["solar_like"] == [o for o, s in STARS.items() if s[-1] is not None]
    assert got["cutflow"] == expected_cutflow()
    # obsid 7 only, with M_G = G - 5 log10(r_med_geo) + 5 - A_G and (BP-RP)_0 = bp_rp - E(BP-RP) (Eq. 1)
    mg = 12.0 - 5 * math.log10(500.0) + 5 - 0.1
    assert [r[:4] for r in got["training_set"]] == [(7, 5700.0, 4.4, 0.0)]
    # REAL columns: G, A_G and E(BP-RP) are float4, so M_G and (BP-RP)_0 agree to float4 precision (1e-6)
    assert float(got["training_set"][0][4]) == pytest.approx(mg, abs=1e-5)
    assert float(got["training_set"][0][5]) == pytest.approx(0.75, abs=1e-6)


def test_gradient_bins_live_in_the_database(engine):
    with engine.connect() as conn:
        bins = {r.name: (r.x, r.bin_by, r.bin_start, r.bin_stop, r.bin_width, r.x_min, r.x_max)
                for r in conn.execute(sa.text("SELECT * FROM gradient_binning"))}
        sample = "SELECT 1 AS obsid, 0.1::float8 AS feh, 8.0::float8 AS r_kpc, 0.1::float8 AS abs_z_kpc"
        conn.execute(sa.text(f"CREATE TEMPORARY TABLE three AS {sample} UNION ALL "
                             "SELECT 2, 0.0, 9.0, 0.15 UNION ALL SELECT 3, -0.1, 10.0, 0.12"))
        radial = conn.execute(sa.text("SELECT bin_center, slope, n FROM gradient_table('radial', 'three')")).all()
    assert bins == {"radial": ("r_kpc", "abs_z_kpc", 0, 2, 0.2, 7, 14),
                    "vertical": ("abs_z_kpc", "r_kpc", 7, 14, 1, 0, 2)}
    # three stars in the first |Z| bin on the line [Fe/H] = -0.1 R + 0.9: slope -0.1 dex/kpc exactly (float8)
    assert len(radial) == 1 and radial[0].n == 3
    assert radial[0].bin_center == pytest.approx(0.1) and radial[0].slope == pytest.approx(-0.1, abs=1e-12)


def test_upgrade_from_the_previous_release_changes_the_views_and_keeps_the_rows(embedded_server):
    engine = _database(embedded_server, PREVIOUS_RELEASE)
    with engine.begin() as conn:
        insert_stars(conn)
    with engine.connect() as conn:
        before = sample_results(conn)
        old = {v: conn.execute(sa.text("SELECT pg_get_viewdef(cast(:v as regclass))"), {"v": v}).scalar()
               for v in ("training_set", "training_cutflow", "gradient_radial", "solar_like")}
    migrate.upgrade(engine)
    with engine.connect() as conn:
        after = sample_results(conn)
        new = {v: conn.execute(sa.text("SELECT pg_get_viewdef(cast(:v as regclass))"), {"v": v}).scalar()
               for v in old}
    engine.dispose()
    assert before == after and after["cutflow"] == expected_cutflow()
    assert "training_stage" in new["training_set"] and "training_stage" in new["training_cutflow"]
    assert "gradient_table" in new["gradient_radial"] and "is_solar_like" in new["solar_like"]
    assert all("training_stage" not in old[v] for v in ("training_set", "training_cutflow"))

