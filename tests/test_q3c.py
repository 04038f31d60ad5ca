"""The q3c compat layer gives the same ipix, pairs and counts as the q3c 2.0.0 extension."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa

from catalogdb.db import q3c
from conftest import create_database

CORNER_DEC = math.degrees(math.atan(1 / math.sqrt(2)))  # 35.26...: cube corners


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def _special_points() -> list[tuple[float, float]]:
    pts = []
    ras = [
        0,
        45,
        90,
        135,
        180,
        225,
        270,
        315,
        360,
        -360,
        720,
        -0.0,
        359.99999999999994,
        44.99999999999999,
        45.00000000000001,
        -1,
        1e-300,
        400.5,
        -45,
    ]
    decs = [
        0,
        90,
        -90,
        CORNER_DEC,
        -CORNER_DEC,
        35.2643896827,
        -35.2643896827,
        45,
        -45,
        89.9999999,
        -89.9999999,
        1e-12,
        95,
        -100,
    ]
    for r in ras:
        for d in decs:
            pts.append((r, d))
            for e in (1e-13, -1e-13, 1e-9, -1e-9):
                pts.append((r + e, d))
                pts.append((r, d + e))
    return pts


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def _catalogues() -> dict[str, tuple[list[float], list[float]]]:
    """Point sets: `a` (centres, crowded at poles, face edges and corners) and `b` (neighbours of a + sky)."""
    rng = np.random.default_rng(20240503)
    ra, dec = _sky(rng, 1500)
    hot = [
        (0, 90),
        (0, -90),
        (45, CORNER_DEC),
        (135, -CORNER_DEC),
        (315, CORNER_DEC),
        (45, 0),
        (0, 45),
        (90, -45),
        (359.9999, 0),
        (0.0001, 0),
        (180, 0),
    ]
    hra = np.concatenate([np.full(40, h[0]) for h in hot]) + rng.normal(0, 0.01, 40 * len(hot))
    hdec = np.clip(np.concatenate([np.full(40, h[1]) for h in hot]) + rng.normal(0, 0.01, 40 * len(hot)), -90, 90)
    a_ra = np.concatenate([ra, hra]) % 360
    a_dec = np.concatenate([dec, hdec])
    # neighbours: offsets of a few arcsec and of up to a degree, in random directions
    reps = np.repeat(np.arange(a_ra.size), 4)
    sep = np.concatenate([rng.uniform(0, 8 / 3600, reps.size // 2), rng.uniform(0, 1.5, reps.size - reps.size // 2)])
    rng.shuffle(sep)
    pa = rng.uniform(0, 2 * np.pi, reps.size)
    d0, r0 = np.radians(a_dec[reps]), np.radians(a_ra[reps])
    s = np.radians(sep)
    nd = np.arcsin(np.clip(np.sin(d0) * np.cos(s) + np.cos(d0) * np.sin(s) * np.cos(pa), -1, 1))
    nr = r0 + np.arctan2(np.sin(pa) * np.sin(s) * np.cos(d0), np.cos(s) - np.sin(d0) * np.sin(nd))
    sra, sdec = _sky(rng, 4000)
    b_ra = np.concatenate([np.degrees(nr) % 360, sra])
    b_dec = np.concatenate([np.degrees(nd), sdec])
    rra, rdec = _sky(rng, 100_000)
    sp = _special_points()
    p_ra = np.concatenate([rra, rng.uniform(-720, 1080, 2000), [p[0] for p in sp], a_ra, b_ra])
    p_dec = np.concatenate([rdec, rng.uniform(-90, 90, 2000), [p[1] for p in sp], a_dec, b_dec])
    return {
        "a": (a_ra.tolist(), a_dec.tolist()),
        "b": (b_ra.tolist(), b_dec.tolist()),
        "p": (p_ra.tolist(), p_dec.tolist()),
    }


DATA = _catalogues()


def _load(url: str) -> None:
    eng = _engine(url)
    with eng.begin() as conn:
        for name, (ra, dec) in DATA.items():
            conn.execute(sa.text(f"create table {name} (id serial primary key, ra float8, dec float8)"))
            conn.execute(
                sa.text(
                    f"insert into {name} (ra, dec) select ra, dec from unnest(cast(:ra as float8[]), "
                    "cast(:dec as float8[])) with ordinality as t(ra, dec, i) order by i"
                ),
                {"ra": ra, "dec": dec},
            )
        conn.execute(sa.text("create index b_q3c on b (q3c_ang2ipix(ra, dec))"))
        conn.execute(sa.text("analyze a; analyze b; analyze p"))
    eng.dispose()


@pytest.fixture(scope="module")
def dbs(pg15_server) -> dict[str, str]:
    """Two databases on the PostgreSQL 15 server holding the same points: the extension and compat."""
    urls = {"ext": create_database(pg15_server, "q3cext"), "compat": create_database(pg15_server, "q3ccmp")}
    for mode, url in urls.items():
        eng = _engine(url)
        with eng.begin() as conn:
            assert q3c.ensure(conn, "extension" if mode == "ext" else "compat") == (
                "extension" if mode == "ext" else "compat"
            )
        eng.dispose()
        _load(url)
    return urls


@pytest.fixture(scope="module")
def embedded_compat(embedded_server) -> str:
    """A database on the embedded PostgreSQL 18 (no q3c there) with the compat functions and the points."""
    url = create_database(embedded_server, "q3cemb")
    eng = _engine(url)
    with eng.begin() as conn:
        assert q3c.ensure(conn, "auto") == "compat"
    eng.dispose()
    _load(url)
    return url


def _fetch(url: str, sql: str, **params) -> list[tuple]:
    eng = _engine(url)
    with eng.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql), params)]
    eng.dispose()
    return rows


REFERENCE = [
    ((0, 0), 2017612633061982208),
    ((0, 90), 480383960252852906),
    ((-1, 0), 1825388318008017157),
    ((45, 0), 2882303761517117440),
    ((90, 30), 3316947865676947490),
    ((180, -30), 3792734746065275528),
    ((10, 20), 2061494256435992038),
]


def test_reference_ipix_on_embedded(embedded_compat):
    for (ra, dec), ipix in REFERENCE:
        assert _fetch(embedded_compat, "select q3c_ang2ipix(:ra, :dec)", ra=ra, dec=dec) == [(ipix,)]
    got = _fetch(
        embedded_compat,
        "select q3c_ang2ipix('NaN', 0), q3c_ang2ipix(0, 'Infinity'), "
        "q3c_ang2ipix('-Infinity', 0), q3c_ang2ipix(null, 1)",
    )
    assert got == [(None, None, None, None)]


def test_ipix_identical(dbs, embedded_compat):
    sql = (
        "select id, q3c_ang2ipix(ra, dec), case when abs(ra) > 1e-30 or ra = 0 then "
        "q3c_ang2ipix(ra::real, dec::real) end from p order by id"
    )
    ext = _fetch(dbs["ext"], sql)
    assert len(ext) > 100_000
    assert _fetch(dbs["compat"], sql) == ext
    assert _fetch(embedded_compat, sql) == ext


JOIN_RADII = [1 / 3600, 3 / 3600, 1 / 60, 1.0, 10.0]


@pytest.mark.parametrize("radius", JOIN_RADII)
def test_join_pairs_identical(dbs, embedded_compat, radius):
    limit = "and a.id <= 300" if radius >= 10 else ""
    sql = f"select a.id, b.id from a, b where q3c_join(a.ra, a.dec, b.ra, b.dec, :r) {limit}"
    ext = set(_fetch(dbs["ext"], sql, r=radius))
    assert len(ext) > 100  # the sets crowd neighbours at every radius
    assert set(_fetch(dbs["compat"], sql, r=radius)) == ext
    if radius <= 1 / 60:
        assert set(_fetch(embedded_compat, sql, r=radius)) == ext


CONES = [
    (ra, dec, r)
    for (ra, dec) in [
        (0, 90),
        (123, -90),
        (45, CORNER_DEC),
        (225, -CORNER_DEC),
        (45, 0),
        (0, 0),
        (359.99, 12),
        (200, 60),
        (88, -44.9),
    ]
    for r in (0.001 / 3600, 0.001, 0.01, 0.1, 1, 5, 10, 30)
]


def test_radial_counts_identical(dbs, embedded_compat):
    sql = " union all ".join(
        f"select {i}, count(*) from b where q3c_radial_query(ra, dec, {ra!r}, {dec!r}, {r!r})"
        for i, (ra, dec, r) in enumerate(CONES)
    )
    ext = sorted(_fetch(dbs["ext"], sql))
    assert sum(c for _, c in ext) > 10_000
    assert sorted(_fetch(dbs["compat"], sql)) == ext
    assert sorted(_fetch(embedded_compat, sql)) == ext
    # a point exactly at the centre of a 0.36 mas cone: compat finds it (the 2.0.0 extension's covering
    # misses it at this radius, so only compat against the exact test here)
    sql = (
        "select count(*) from b where q3c_radial_query(ra, dec, (select ra from b where id = 7), "
        "(select dec from b where id = 7), 1e-7)"
    )
    assert _fetch(dbs["compat"], sql) == [(1,)]
    assert _fetch(embedded_compat, sql) == [(1,)]


SHAPES = [
    "q3c_ellipse_query(ra, dec, 10, 20, 10, 0.3, 30)",
    "q3c_ellipse_query(ra, dec, 200, -70, 20, 0.5, 110)",
    "q3c_ellipse_query(ra, dec, 200, 89, 5, 0.1, 0)",
    "q3c_ellipse_query(ra, dec, 45, 35.26, 2, 0.7, 160)",
    "q3c_poly_query(ra, dec, '{10,10,40,12,35,40,15,30}'::float8[])",
    "q3c_poly_query(ra, dec, '{10,10,40,12,20,20,35,40,15,30}'::float8[])",
    "q3c_poly_query(ra, dec, '((350,-10),(20,-12),(15,20),(340,15))'::polygon)",
    "q3c_poly_query(ra, dec, '{0,80,120,80,240,80}'::float8[])",
    "q3c_poly_query(ra::real, dec::real, '{44,34,46,34,46,36.5,44,36.5}'::float8[])",
    "q3c_in_poly(ra, dec, '{10,10,40,12,35,40,15,30}'::float8[])",
    "q3c_in_ellipse(ra, dec, 300, -20, 8, 0.5, 45)",
    "q3c_radial_query(ra::real, dec::real, 10, 10, 3)",
]


def test_shapes_identical(dbs, embedded_compat):
    sql = " union all ".join(f"select {i}, count(*) from b where {s}" for i, s in enumerate(SHAPES))
    ext = sorted(_fetch(dbs["ext"], sql))
    assert all(c > 0 for _, c in ext)
    assert sorted(_fetch(dbs["compat"], sql)) == ext
    assert sorted(_fetch(embedded_compat, sql)) == ext


def test_ellipse_join_and_pm_join_identical(dbs):
    sqls = [
        "select a.id, b.id from a, b where q3c_ellipse_join(a.ra, a.dec, b.ra, b.dec, 0.5, 0.4, 70)",
        "select a.id, b.id from a, b where q3c_join_pm(a.ra, a.dec, 200, -100, 1, 2000, b.ra, b.dec, 2016, 20, "
        "5.0 / 3600)",
        "select a.id, b.id from a, b where q3c_join_pm(a.ra, a.dec, 1e6, -2e6, 0, 2000, b.ra, b.dec, 1990, 10, 0.2)",
        "select a.id, b.id from a, b where q3c_join_pm(a.ra, a.dec, null, null, 0, 2000, b.ra, b.dec, 1990, 10, 0.2)",
    ]
    for sql in sqls:
        ext = set(_fetch(dbs["ext"], sql))
        assert len(ext) > 50, sql
        assert set(_fetch(dbs["compat"], sql)) == ext, sql


def test_values_agree(dbs, embedded_compat):
    sql = (
        "select a.id, q3c_dist(a.ra, a.dec, b.ra, b.dec), q3c_sindist(a.ra, a.dec, b.ra, b.dec), "
        "q3c_dist_pm(a.ra, a.dec, (a.id % 100) * 50.0, (a.id % 37) * -80.0, a.id % 2, 2000, b.ra, b.dec, 2016), "
        "q3c_sindist_pm(a.ra, a.dec, 10, 20, 1, 2000, b.ra, b.dec, 1990), "
        "q3c_dist_pm(a.ra, a.dec, null, 1, 1, 2000, b.ra, b.dec, 1990), "
        "(q3c_ipix2ang(q3c_ang2ipix(a.ra, a.dec)))[1], (q3c_ipix2ang(q3c_ang2ipix(a.ra, a.dec)))[2], "
        "q3c_pixarea(q3c_ang2ipix(a.ra, a.dec), 12 + a.id % 19) "
        "from a join b on b.id = a.id * 3 order by a.id"
    )
    ext = np.array(_fetch(dbs["ext"], sql), dtype=float)
    for url in (dbs["compat"], embedded_compat):
        got = np.array(_fetch(url, sql), dtype=float)
        assert got.shape == ext.shape
        # the same haversine formula in C and in SQL: libm and operation-order rounding only (~1e-15 relative)
        np.testing.assert_allclose(got[:, [1, 2, 5]], ext[:, [1, 2, 5]], rtol=1e-12, atol=1e-15)
        # proper motion: RA steps of pm / cos(dec) near the poles round differently (rel. 1e-8)
        np.testing.assert_allclose(got[:, 3:5], ext[:, 3:5], rtol=1e-7, atol=1e-15)
        # cell corners: 1e-9 deg is ~1% of a finest cell (90 / 2^30 = 8.4e-8 deg), so rounding, not another corner
        np.testing.assert_allclose(got[:, 6:8], ext[:, 6:8], rtol=0, atol=1e-9)
        # cell areas (depth >= 12: below that the extension's own value is dominated by rounding)
        np.testing.assert_allclose(got[:, 8], ext[:, 8], rtol=1e-6)
    for url in (dbs["ext"], dbs["compat"]):
        assert _fetch(url, "select q3c_version()::text like '2.0.0%'") == [(True,)]


def _plan(url: str, sql: str) -> str:
    return "\n".join(r[0] for r in _fetch(url, "explain " + sql))


@pytest.mark.parametrize("which", ["dbs", "embedded_compat"])
def test_join_and_cone_use_the_index(request, which):
    url = request.getfixturevalue(which)
    url = url["compat"] if isinstance(url, dict) else url
    for sql in (
        "select a.id, b.id from a, b where q3c_join(a.ra, a.dec, b.ra, b.dec, 3.0 / 3600)",
        "select count(*) from b where q3c_radial_query(ra, dec, 10, 20, 0.5)",
    ):
        plan = _plan(url, sql)
        assert "b_q3c" in plan and "Index Cond" in plan, plan
        # inlined: the planner sees the ranges, not the wrapper
        assert "q3c_join(" not in plan and "q3c_radial_query(" not in plan, plan
    # the compat functions are parallel safe: a parallel plan is allowed
    plan = _plan(url, "select count(*) from a, b where q3c_join(a.ra, a.dec, b.ra, b.dec, 3.0 / 3600)")
    safe = _fetch(url, "select bool_and(proparallel = 's') from pg_proc where proname like 'q3c%'")
    assert safe == [(True,)], plan


def test_modes_and_status(pg15_server, embedded_server):
    ext_url = create_database(pg15_server, "q3cmode")
    eng = _engine(ext_url)
    with eng.begin() as conn:
        assert q3c.active(conn) is None
        assert q3c.ensure(conn, "auto") == "extension"
        assert q3c.active(conn) == ("extension", "2.0.0")
        with pytest.raises(RuntimeError, match="extension is installed"):
            q3c.ensure(conn, "compat")
    eng.dispose()
    emb_url = create_database(embedded_server, "q3cmode")
    eng = _engine(emb_url)
    with eng.begin() as conn:
        with pytest.raises(q3c.Q3CUnavailable, match="--q3c compat"):
            q3c.ensure(conn, "extension")
        assert q3c.ensure(conn, "compat") == "compat"
        q3c.install_compat(conn)  # re-running upgrades in place
        assert q3c.active(conn) == ("compat", str(q3c.COMPAT_VERSION))
        version = conn.execute(sa.text("select q3c_version()")).scalar()
        assert version == f"2.0.0 (catalogdb compat {q3c.COMPAT_VERSION})"
        q3c.drop_compat(conn)
        assert q3c.active(conn) is None
        assert conn.execute(sa.text("select count(*) from pg_proc where proname like 'q3c%'")).scalar() == 0
    eng.dispose()
    with pytest.raises(ValueError):
        q3c.ensure(None, "nope")  # type: ignore[arg-type]
