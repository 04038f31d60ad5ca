"""The TAP service on a real uvicorn server, queried with pyvo (and astroquery, raw HTTP, STILTS taplint)."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import threading
import time
import warnings

import numpy as np
import pytest
import pyvo
import requests
import sqlalchemy as sa
import uvicorn

from catalogdb.db import admin
from catalogdb.db.published import READER_ROLE
from catalogdb.publish import publish_rows
from catalogdb.tap import adql
from catalogdb.tap.app import create_app, proxy_options
from catalogdb.tap.query import TapConfig
from catalogdb.tap.upload import UploadLimits
from conftest import create_database, require

CONFIG = TapConfig(sync_timeout_s=3, async_timeout_s=30, default_maxrec=2000, hard_maxrec=5000, async_workers=2,
                   pool_size=4)
BIG = 9_007_199_254_740_993  # 2**53 + 1: a float64 cannot hold it
CENTRE = (150.0, 30.0)


def fill(engine: sa.Engine, n: int = 3000) -> None:
    """Synthetic survey rows around CENTRE and the prediction run that makes final_catalog non-empty."""
    with engine.begin() as conn:
        conn.execute(sa.text("select setseed(0.42)"))
        conn.execute(sa.text(f"""
            insert into lamost_star (obsid, ra, dec, snrg, snrr, teff, logg, feh, class, gaia_source_id)
            select {BIG} + i, {CENTRE[0]} + (random() - 0.5) * 2 / cos(radians({CENTRE[1]})),
                   {CENTRE[1]} + (random() - 0.5) * 2, 20 + 80 * random(), 30 + 80 * random(),
                   case when i % 7 = 0 then null else 5000 + 1500 * random() end,
                   4 + random(), -0.5 + random(), 'STAR', 4000000000000000000 + i
            from generate_series(0, {n - 1}) i"""))
        conn.execute(sa.text(f"""
            insert into gaia_source (source_id, ra, dec, parallax, zpt_valid)
            select 4000000000000000000 + i, ra, dec, 1 + random(),
                   case i % 3 when 0 then true when 1 then false end
            from lamost_star, lateral (select obsid - {BIG} as i) s"""))
        conn.execute(sa.text("""
            insert into xmatch_lamost_gaia select obsid, gaia_source_id, 0.1, 1, true, 1 from lamost_star"""))
        conn.execute(sa.text("""
            insert into spectrum (obsid, flux, flag, snrg, path, checksum, run_id)
            select obsid, '\\x00'::bytea, (obsid % 2)::smallint, snrg, 'x.fits', 'c', 1 from lamost_star"""))
        conn.execute(sa.text("""
            insert into cnn_prediction (model_id, obsid, cnn_teff, cnn_logg, cnn_feh, cnn_distance, run_id)
            select 'm1', obsid, teff, logg, feh, 1000 * random(), 2 from lamost_star"""))
        conn.execute(sa.text("insert into cnn_model (model_id, path, config, training_rows, training_checksum, "
                             "code_version, metrics, run_id) values ('m1', '-', '{}', 0, '-', 'test', '{}', 1)"))
        publish_rows(conn, "m1", None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn in a background thread on a free loopback port."""

    def __init__(self, url: str, config: TapConfig = CONFIG):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(url, config), host="127.0.0.1", port=self.port,
                                                    log_level="warning", **proxy_options(config)))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, "TAP server did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/tap"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def db_url(embedded_server) -> str:
    url = create_database(embedded_server)
    engine = sa.create_engine(url)
    admin.init(engine, "compat")
    fill(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def engine(db_url):
    eng = sa.create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def tap(db_url):
    server = Server(db_url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tap):
    return pyvo.dal.TAPService(tap.url)


def cone(table: str, r_deg: float, cols: str = "obsid") -> str:
    return (f"SELECT {cols} FROM {table} WHERE CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {CENTRE[0]}, {CENTRE[1]}, {r_deg})) = 1")


def sql_cone(engine, table: str, r_deg: float) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            f"select obsid from {table} where q3c_radial_query(ra, dec, :a, :d, :r)"),
            {"a": CENTRE[0], "d": CENTRE[1], "r": r_deg}).scalars())


# --- ADQL translation (no server) ----------------------------------------------------------------------


def test_adql_translation_uses_q3c_and_hides_unpublished_tables():
    def inline(t: adql.Translation) -> str:  # the SQL with its q3c parameters written in
        return (t.sql % {k: repr(v) for k, v in t.params.items()} if t.params else t.sql).lower()

    sql = inline(adql.translate("SELECT TOP 5 ra FROM final_catalog WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
                                "CIRCLE('ICRS', 10, 20, 0.1))"))
    assert "q3c_join(10.0, 20.0, ra, dec, 0.1)" in sql and sql.endswith("limit 5")
    poly = inline(adql.translate("SELECT ra FROM lamost_star WHERE CONTAINS(POINT('ICRS', ra, dec), "
                                 "POLYGON('ICRS', 1, 2, 3, 4, 5, -6)) = 0"))
    assert "not (q3c_poly_query(ra, dec, cast(array[1.0, 2.0, 3.0, 4.0, 5.0, -6.0] as double precision[])))" in poly
    dist = inline(adql.translate("SELECT DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 1, 2)) AS d FROM gaia_source "
                                 "WHERE INTERSECTS(BOX('ICRS', 10, 20, 1, 1), POINT('ICRS', ra, dec)) = 1"))
    assert "q3c_dist(ra, dec, 1.0, 2.0)" in dist and "q3c_poly_query" in dist
    # every cone search has one text (prepared once per connection); a '%' of the query keeps it literal
    texts = {adql.translate(cone("lamost_star", r)).sql for r in (0.1, 0.2)}
    assert len(texts) == 1
    assert adql.translate(cone("lamost_star", 0.1) + " AND class LIKE 'S%'").params is None
    funcs = adql.translate("SELECT LOG(teff), LOG10(teff), ROUND(teff, 1) FROM lamost_star").sql.lower()
    assert "ln(teff)" in funcs and "log(teff)" in funcs and "round(cast(teff as decimal), 1)" in funcs
    assert '"tap_schema"."columns"' in adql.translate("SELECT COUNT(*) AS nrow FROM TAP_SCHEMA.columns").sql
    for bad, words in [("SELECT * FROM pg_catalog.pg_authid", "not found"), ("SELECT * FROM run", "not found"),
                       ("SELECT pg_sleep(5)", "PG_SLEEP"), ("SELECT 1; DROP TABLE lamost_star", "one statement"),
                       ("DELETE FROM lamost_star", "only SELECT"), ("DROP TABLE lamost_star", "only SELECT"),
                       ("SELECT * FROM generate_series(1, 3)", "not supported"), ("SELEC ra FROM x", "syntax"),
                       ("SELECT CAST(ra AS regclass) FROM lamost_star", "CAST"),
                       ("SELECT ra INTO t2 FROM lamost_star", "only SELECT"),
                       ("SELECT POINT('ICRS', ra, dec) FROM lamost_star", "POINT")]:
        with pytest.raises(adql.AdqlError, match=words):
            adql.translate(bad)


def test_cone_translation_uses_the_q3c_index(engine):
    t = adql.translate(cone("lamost_star", 0.1))
    with engine.begin() as conn:
        conn.execute(sa.text("set local enable_seqscan = off"))
        plan = "\n".join(conn.exec_driver_sql(f"explain {t.sql}", t.params).scalars())
    assert "lamost_star_q3c_idx" in plan


# --- sync ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["lamost_star", "final_catalog"])
def test_sync_cone_equals_sql(service, engine, table):
    expected = sql_cone(engine, table, 0.1)
    assert 10 < len(expected) < 1000
    result = service.run_sync(cone(table, 0.1, "obsid, ra, dec"))
    got = result.to_table()
    assert set(int(v) for v in got["obsid"]) == expected
    assert got["obsid"].dtype == np.int64 and got["ra"].unit == "deg"


def test_types_nulls_booleans_exact(service, engine):
    query = ("SELECT g.source_id, g.zpt_valid, l.obsid, l.teff, l.class FROM gaia_source g "
             "JOIN lamost_star l ON l.gaia_source_id = g.source_id ORDER BY l.obsid")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query.replace("SELECT", "SELECT", 1))).all()
    for fmt in ("votable", "votable/b2"):
        table = pyvo.dal.TAPService(service.baseurl).run_sync(query, maxrec=5000, format=fmt).to_table() \
            if fmt == "votable" else _raw_votable(service.baseurl, query, fmt)
        assert len(table) == len(rows)
        assert table["obsid"].dtype == np.int64 and table["source_id"].dtype == np.int64
        assert [int(v) for v in table["obsid"]] == [r.obsid for r in rows]
        assert int(table["obsid"][1]) == BIG + 1
        valid = table["zpt_valid"]
        assert valid.dtype == bool
        assert [None if m else bool(v) for v, m in zip(valid.data, np.ma.getmaskarray(valid), strict=True)] == \
            [r.zpt_valid for r in rows]
        teff_null = np.ma.getmaskarray(table["teff"])
        assert list(teff_null) == [r.teff is None for r in rows]
        # REAL both ways: float32 in the VOTable, its shortest decimal from psycopg, < 6e-8 apart (default rtol)
        assert np.allclose(table["teff"].data[~teff_null].astype(float),
                           [r.teff for r in rows if r.teff is not None])
        assert table["teff"].unit == "K" and table["teff"].dtype == np.float32


def _raw_votable(base: str, query: str, fmt: str):
    from io import BytesIO

    from astropy.io.votable import parse_single_table

    resp = requests.post(f"{base}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query,
                                              "RESPONSEFORMAT": fmt, "MAXREC": "5000"}, timeout=30)
    assert resp.status_code == 200 and "BINARY2" in resp.text[:5000]
    return parse_single_table(BytesIO(resp.content)).to_table()


def test_csv_and_fits(tap, engine):
    from io import BytesIO

    from astropy.io import fits
    from astropy.table import Table

    query = "SELECT TOP 50 obsid, ra, teff, class FROM lamost_star ORDER BY obsid"
    resp = requests.get(f"{tap.url}/sync", params={"request": "doQuery", "lang": "ADQL", "query": query,
                                                   "format": "csv"}, timeout=30)
    assert resp.headers["content-type"].startswith("text/csv")
    table = Table.read(resp.text, format="ascii.csv")
    assert table["obsid"][0] == BIG and len(table) == 50
    resp = requests.get(f"{tap.url}/sync", params={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query,
                                                   "RESPONSEFORMAT": "fits"}, timeout=30)
    with fits.open(BytesIO(resp.content)) as hdul:
        data, header = hdul[1].data, hdul[1].header
        assert int(data["obsid"][0]) == BIG and header["TUNIT2"] == "deg" and header["TUCD2"].startswith("pos.eq.ra")
        assert len(data) == 50


def test_maxrec_overflow(service, tap):
    result = service.run_sync("SELECT obsid FROM lamost_star", maxrec=7)
    assert len(result) == 7 and result.query_status == "OVERFLOW"
    exact = service.run_sync("SELECT TOP 7 obsid FROM lamost_star", maxrec=7)
    assert len(exact) == 7 and exact.query_status == "OK"  # no more rows asked for: no overflow
    # pyvo leaves out MAXREC=0, so ask by hand: the metadata and the overflow marker, no rows
    zero = requests.post(f"{tap.url}/sync", data={"LANG": "ADQL", "QUERY": "SELECT obsid, ra FROM lamost_star",
                                                  "MAXREC": "0"}, timeout=30).text
    assert '<FIELD name="obsid" datatype="long"' in zero and "<TR>" not in zero
    assert zero.rindex('value="OVERFLOW"') > zero.index("</TABLE>")
    none = requests.post(f"{tap.url}/sync", data={"LANG": "ADQL", "QUERY": "SELECT obsid FROM lamost_star "
                                                  "WHERE obsid < 0", "MAXREC": "0"}, timeout=30).text
    assert "OVERFLOW" not in none
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default MAXREC of the service is 2000 < 3000 rows
        with pytest.raises(pyvo.dal.DALOverflowWarning):
            service.run_sync("SELECT obsid FROM lamost_star")


def test_bad_requests_get_tap_errors(service, tap):
    with pytest.raises(pyvo.dal.DALQueryError, match="syntax error"):
        service.run_sync("SELEC obsid FROM lamost_star")
    with pytest.raises(pyvo.dal.DALQueryError, match="does not exist"):
        service.run_sync("SELECT nosuchcolumn FROM lamost_star")
    for params in ({"LANG": "ADQL"}, {"QUERY": "SELECT 1"}, {"LANG": "SQL", "QUERY": "SELECT 1"},
                   {"LANG": "ADQL", "QUERY": "SELECT 1", "MAXREC": "many"},
                   {"LANG": "ADQL", "QUERY": "SELECT 1", "RESPONSEFORMAT": "pdf"}):
        resp = requests.post(f"{tap.url}/sync", data=params, timeout=30)
        assert resp.status_code == 400
        assert '<INFO name="QUERY_STATUS" value="ERROR">' in resp.text
    resp = requests.post(f"{tap.url}/sync", data=b"\xff\xfe", headers={"content-type": "multipart/form-data"},
                         timeout=30)
    assert resp.status_code == 400 and 'value="ERROR"' in resp.text
    assert requests.get(f"{tap.url}/nothing", timeout=30).status_code == 404


def test_writes_multiple_statements_and_sleep_are_refused(service, engine):
    before = sql_cone(engine, "lamost_star", 1.0)
    for query in ("DELETE FROM lamost_star", "DROP TABLE lamost_star", "SELECT obsid FROM lamost_star; DROP TABLE "
                  "lamost_star", "SELECT pg_sleep(10)", "SELECT obsid FROM lamost_star WHERE pg_sleep(10) IS NULL",
                  "UPDATE lamost_star SET teff = 0", "SELECT * FROM run", "SELECT * FROM pg_catalog.pg_roles",
                  "SELECT * FROM information_schema.tables", "SELECT * FROM tap_job"):
        with pytest.raises(pyvo.dal.DALQueryError) as err:
            service.run_sync(query)
        assert "Traceback" not in str(err.value) and "psycopg" not in str(err.value)
    assert sql_cone(engine, "lamost_star", 1.0) == before
    assert len(service.run_sync("SELECT TOP 3 obsid FROM lamost_star")) == 3


def test_timeout_cuts_off_a_long_query_and_the_server_still_answers(service, engine):
    with pytest.raises(pyvo.dal.DALQueryError, match=f"the {CONFIG.sync_timeout_s:g} s time limit"):
        service.run_sync("SELECT COUNT(*) FROM lamost_star a, lamost_star b, lamost_star c")
    with engine.connect() as conn:  # cancelled in the database, not left running after the error
        running = conn.execute(sa.text(
            "select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() "
            "and query ilike '%lamost_star%lamost_star%lamost_star%'")).scalar()
    assert running == 0
    assert len(service.run_sync("SELECT TOP 1 obsid FROM lamost_star")) == 1


def test_queries_run_as_the_read_only_role(engine, db_url):
    reader = sa.create_engine(sa.engine.make_url(db_url).set(username=READER_ROLE))
    with reader.connect() as conn:
        assert conn.execute(sa.text("select count(*) from final_catalog")).scalar() == 3000
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text("select * from run"))
    with reader.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        conn.execute(sa.text("delete from lamost_star"))
    reader.dispose()


# --- metadata ---------------------------------------------------------------------------------------------


def test_tables_with_units_ucds_and_descriptions(service):
    tables = service.tables
    names = set(tables.keys())
    assert {"final_catalog", "lamost_star", "gaia_source", "TAP_SCHEMA.columns"} <= names
    assert not names & {"run", "spectrum", "tap_job", "cnn_model"}
    columns = {c.name: c for c in tables["final_catalog"].columns}
    assert columns["ra"].unit == "deg" and columns["ra"].ucd == "pos.eq.ra;meta.main"
    assert columns["cnn_teff"].unit == "K" and columns["obsid"].datatype.content == "long"
    assert "CNN" in columns["cnn_feh"].description
    count = service.run_sync("SELECT COUNT(*) AS nrow FROM TAP_SCHEMA.columns")
    assert int(count["nrow"][0]) == sum(len(t.columns) for t in tables.values())
    units = service.run_sync("SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns WHERE table_name = 'lamost_star'")
    assert dict(zip(units["column_name"], units["unit"], strict=True))["teff"] == "K"


def test_capabilities_and_availability(tap):
    caps = requests.get(f"{tap.url}/capabilities", timeout=30).text
    assert 'standardID="ivo://ivoa.net/std/TAP"' in caps and "<form>CIRCLE</form>" in caps
    assert "<vosi:available>true</vosi:available>" in requests.get(f"{tap.url}/availability", timeout=30).text


# --- async ------------------------------------------------------------------------------------------------


def test_async_whole_life(service, engine):
    expected = sql_cone(engine, "final_catalog", 0.1)
    job = service.submit_job(cone("final_catalog", 0.1))
    assert job.phase == "PENDING"
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED"
    assert set(int(v) for v in job.fetch_result().to_table()["obsid"]) == expected
    url = job.url
    job.delete()
    assert requests.get(url, timeout=30).status_code == 404
    result = service.run_async(cone("lamost_star", 0.1, "obsid"))
    assert set(int(v) for v in result.to_table()["obsid"]) == sql_cone(engine, "lamost_star", 0.1)
    bad = service.submit_job("SELECT nothing FROM nowhere")
    bad.run()
    bad.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert bad.phase == "ERROR"
    with pytest.raises(pyvo.dal.DALQueryError, match="nowhere not found"):
        bad.raise_if_error()
    bad.delete()


def test_async_http_as_topcat_sees_it(tap):
    s = requests.Session()
    created = s.post(f"{tap.url}/async", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                               "QUERY": "SELECT TOP 3 obsid FROM lamost_star"},
                     allow_redirects=False, timeout=30)
    assert created.status_code == 303
    location = created.headers["location"]
    assert location.startswith("http://127.0.0.1:") and location.rsplit("/", 2)[-2] == "async"
    ran = s.post(f"{location}/phase", data={"PHASE": "RUN"}, allow_redirects=False, timeout=30)
    assert ran.status_code == 303 and ran.headers["location"] == location
    assert s.get(f"{location}/phase", timeout=30).text != "PENDING"
    doc = s.get(location, params={"WAIT": "30"}, timeout=60).text
    if "EXECUTING" in doc or "QUEUED" in doc:
        doc = s.get(location, params={"WAIT": "30"}, timeout=60).text
    assert "<uws:phase>COMPLETED</uws:phase>" in doc and 'version="1.1"' in doc
    assert f"{location}/results/result" in doc
    assert s.get(f"{location}/results/result", timeout=30).text.count("<TR>") == 3
    assert s.get(location + "/executionduration", timeout=30).text == "30"
    deleted = s.delete(location, allow_redirects=False, timeout=30)
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("/async")
    failing = s.post(f"{tap.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT * FROM pg_user", "PHASE": "RUN"},
                     timeout=60)
    job_url = failing.url
    deadline = time.time() + 30
    while "ERROR" not in s.get(f"{job_url}/phase", timeout=30).text:
        assert time.time() < deadline
        time.sleep(0.1)
    error = s.get(f"{job_url}/error", timeout=30).text
    assert '<INFO name="QUERY_STATUS" value="ERROR">' in error and "not found" in error
    assert s.post(job_url, data={"ACTION": "DELETE"}, allow_redirects=False, timeout=30).status_code == 303


def test_jobs_survive_a_server_restart(db_url, engine):
    first = Server(db_url)
    done = pyvo.dal.TAPService(first.url).submit_job("SELECT TOP 4 obsid FROM lamost_star ORDER BY obsid")
    done.run()
    done.wait(phases=["COMPLETED", "ERROR"], timeout=60)
    pending = pyvo.dal.TAPService(first.url).submit_job("SELECT TOP 2 obsid FROM lamost_star ORDER BY obsid")
    first.stop()

    second = Server(db_url)
    try:
        job_id, pending_id = done.job_id, pending.job_id
        again = pyvo.dal.AsyncTAPJob(f"{second.url}/async/{job_id}")
        assert again.phase == "COMPLETED"
        assert [int(v) for v in again.fetch_result().to_table()["obsid"]] == [BIG + i for i in range(4)]
        later = pyvo.dal.AsyncTAPJob(f"{second.url}/async/{pending_id}")
        assert later.phase == "PENDING"
        later.run()
        later.wait(phases=["COMPLETED", "ERROR"], timeout=60)
        assert len(later.fetch_result()) == 2
        # old results are cleaned up: a job past its destruction time goes
        with engine.begin() as conn:
            conn.execute(sa.text("update tap_job set destruction = now() - interval '1 s' where job_id = :j"),
                         {"j": job_id})
        from catalogdb.tap.uws import JobStore

        assert JobStore.cleanup(type("S", (), {"engine": engine})()) == 1
        assert requests.get(f"{second.url}/async/{job_id}", timeout=30).status_code == 404
    finally:
        second.stop()


# --- other clients ---------------------------------------------------------------------------------------


def test_astroquery_tapplus(tap, engine):
    from astroquery.utils.tap.core import TapPlus

    client = TapPlus(url=tap.url, verbose=False)
    expected = sql_cone(engine, "lamost_star", 0.1)
    sync = client.launch_job(cone("lamost_star", 0.1, "obsid, ra"))
    assert set(int(v) for v in sync.get_results()["obsid"]) == expected
    job = client.launch_job_async(cone("lamost_star", 0.1, "obsid, ra"))
    assert set(int(v) for v in job.get_results()["obsid"]) == expected
    with pytest.raises(Exception, match="syntax error"):
        client.launch_job("SELEC obsid FROM lamost_star")
    names = {t.get_qualified_name() for t in client.load_tables(only_names=True)}
    assert any(n.endswith("final_catalog") for n in names)


def test_taplint_reports_no_errors(db_url):
    require(shutil.which("stilts") is not None, "STILTS is not installed (Debian package stilts)")
    # TAP 1.1 makes the http upload method mandatory where uploads exist (else E-CAP-MUPM): turned on here
    tap = Server(db_url, dataclasses.replace(CONFIG, upload=UploadLimits(allow_urls=True)))
    try:
        out = subprocess.run(["stilts", "taplint", f"tapurl={tap.url}", "report=EWF", "maxrepeat=3"],
                             capture_output=True, text=True, timeout=300).stdout
    finally:
        tap.stop()
    totals = [line for line in out.splitlines() if line.startswith("Totals:")]
    assert totals, out[-3000:]
    reported = "\n".join(line for line in out.splitlines() if line.startswith(("E-", "W-", "F-")))
    assert "Errors: 0; Warnings: 0" in totals[-1], reported
    assert "F-UPL-NOUP" not in out  # the upload stage ran


def test_pg15_real_q3c_cone_search(pg15_server):
    url = create_database(pg15_server)
    engine = sa.create_engine(url)
    assert admin.init(engine, "auto") == "extension"
    fill(engine, 500)
    server = Server(url)
    try:
        result = pyvo.dal.TAPService(server.url).run_sync(cone("final_catalog", 0.3))
        assert set(int(v) for v in result["obsid"]) == sql_cone(engine, "final_catalog", 0.3)
    finally:
        server.stop()
        engine.dispose()
