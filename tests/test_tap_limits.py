"""Limits of the TAP service that a hostile or careless request must not get past (issue 21, the probe)."""

from __future__ import annotations

import http.client
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from urllib.parse import urlencode
from xml.etree import ElementTree

import numpy as np
import pytest
import pyvo
import requests
import sqlalchemy as sa
import test_tap
from astropy.io import fits
from astropy.io.votable import parse_single_table
from test_tap import CONFIG, Server

from catalogdb.db import admin
from catalogdb.db.published import READER_ROLE
from catalogdb.tap import adql
from catalogdb.tap.app import proxy_options
from catalogdb.tap.query import Runner, TapConfig
from catalogdb.writers import Field
from catalogdb.writers.fits import fits_file
from conftest import create_database

db_url, engine, tap = test_tap.db_url, test_tap.engine, test_tap.tap  # the fixtures, for this module too

SECRET_TABLES = ("pg_settings", "pg_roles", "pg_database", "pg_class", "pg_proc", "pg_views", "pg_stat_activity",
                 "run", "cnn_model", "pg_authid")


def sync(tap, query: str, **extra) -> requests.Response:
    return requests.post(f"{tap.url}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **extra},
                         timeout=60)


def error_text(resp: requests.Response) -> str:
    """The QUERY_STATUS=ERROR message of a TAP error document (which must be well-formed XML)."""
    root = ElementTree.fromstring(resp.content)
    infos = [i for i in root.iter("{http://www.ivoa.net/xml/VOTable/v1.3}INFO") if i.get("name") == "QUERY_STATUS"]
    assert infos and infos[-1].get("value") == "ERROR", resp.text[:500]
    return infos[-1].text or ""


# --- probe 5 and 13: the allow-list, hidden tables, system columns ---------------------------------------


def test_cte_scopes_do_not_open_the_allow_list(tap):
    for name in SECRET_TABLES:
        resp = sync(tap, f"WITH {name} AS (SELECT * FROM {name}) SELECT * FROM {name}")
        assert resp.status_code == 400 and error_text(resp).startswith(f"table {name} not found"), name
    # a CTE shadows its name only inside its own scope: not in its own body, not before it, not outside
    for query in ("WITH y AS (SELECT * FROM pg_roles), pg_roles AS (SELECT 1 AS a) SELECT * FROM y",
                  "SELECT * FROM (WITH pg_roles AS (SELECT 1 AS a) SELECT * FROM pg_roles) s, pg_roles"):
        assert "table pg_roles not found" in error_text(sync(tap, query))
    ok = sync(tap, "WITH x AS (SELECT obsid FROM lamost_star), y AS (SELECT * FROM x) SELECT COUNT(*) FROM y")
    assert ok.status_code == 200 and "<TD>3000</TD>" in ok.text
    recursive = sync(tap, "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) "
                          "SELECT SUM(n) AS s FROM t")
    assert "<TD>15</TD>" in recursive.text


def test_hidden_tables_answer_like_missing_ones(tap):
    """'permission denied' against 'does not exist' would tell which hidden tables exist."""
    for query in ("SELECT * FROM {t}", "WITH {t} AS (SELECT * FROM {t}) SELECT * FROM {t}",
                  "SELECT * FROM lamost_star WHERE obsid IN (SELECT obsid FROM {t})"):
        hidden = error_text(sync(tap, query.format(t="run")))
        missing = error_text(sync(tap, query.format(t="no_such_table")))
        assert hidden.replace("run", "X") == missing.replace("no_such_table", "X")
        assert "permission" not in hidden


def test_system_columns_are_hidden(tap):
    for column in ("ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"):
        for query in (f"SELECT {column} FROM lamost_star", f"SELECT TOP 1 l.{column} FROM lamost_star l",
                      f"SELECT obsid FROM lamost_star ORDER BY {column}"):
            resp = sync(tap, query)
            assert resp.status_code == 400 and error_text(resp) == f'column "{column}" does not exist'


# --- probe 11 and 12: malformed input, valid XML ------------------------------------------------------


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
    data = urlencode(body).encode() if body is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    return resp, resp.read()


def test_malformed_input_gets_400_and_keeps_the_connection(tap):
    conn = http.client.HTTPConnection("127.0.0.1", tap.port, timeout=60)
    created, _ = _exchange(conn, "POST", "/tap/async", {"LANG": "ADQL", "QUERY": "SELECT TOP 1 obsid FROM lamost_star"})
    job = "/tap" + created.getheader("location").split("/tap", 1)[1]
    sock = conn.sock
    nested = "SELECT " + "(" * 3000 + "1" + ")" * 3000 + " FROM lamost_star"
    not_nested = "SELECT ra FROM lamost_star WHERE " + "NOT " * 3000 + "ra > 1"
    cases = [("POST", "/tap/sync", {"LANG": "ADQL", "QUERY": nested}, 400, "nested too deeply"),
             ("POST", "/tap/sync", {"LANG": "ADQL", "QUERY": not_nested}, 400, "nested too deeply"),
             ("POST", "/tap/sync", {"LANG": "ADQL", "QUERY": "SELECT 'a\0b' FROM lamost_star"}, 400, "NUL"),
             ("POST", f"{job}", {"EXECUTIONDURATION": "inf"}, 400, "EXECUTIONDURATION"),
             ("POST", f"{job}/executionduration", {"EXECUTIONDURATION": "nan"}, 400, "EXECUTIONDURATION"),
             ("GET", f"{job}?WAIT=nan", None, 400, "WAIT"),
             ("POST", f"{job}/parameters", {"QUERY": "SELECT 1\0"}, 400, "NUL"),
             ("POST", "/tap/sync", {"LANG": "ADQL", "QUERY": "SELECT 1", "UPLOAD": "t,param:t"}, 400, "UPLOAD"),
             ("GET", f"{job}/nothing", None, 404, "no such job resource"),
             ("GET", f"{job}/results/other", None, 404, ""),
             ("GET", "/tap/async/%00", None, 404, "no job"),
             ("GET", "/tap/async/0123456789abcdef", None, 404, "no job"),
             ("GET", "/tap/no/such/path", None, 404, "")]
    for method, path, body, status, words in cases:
        resp, content = _exchange(conn, method, path, body)
        assert resp.status == status, (path, body, content[:300])
        assert not resp.will_close, (path, body)
        root = ElementTree.fromstring(content)
        assert words in "".join(root.itertext()), (path, content[:300])
    ok, content = _exchange(conn, "GET", job)
    assert ok.status == 200 and b"<uws:phase>PENDING</uws:phase>" in content
    assert conn.sock is sock  # one kept-alive connection for all of them
    conn.close()


CONTROL = "".join(chr(c) for c in range(1, 32)) + "\ufffe\uffff"


def test_output_is_valid_xml_whatever_the_input(tap):
    query = f"SELECT TOP 2 obsid, '{CONTROL}' AS junk FROM lamost_star /* {CONTROL} */"
    for fmt in ("votable/b2", "votable"):
        resp = sync(tap, query, RESPONSEFORMAT=fmt)
        assert resp.status_code == 200
        ElementTree.fromstring(resp.content)  # raises on invalid XML
    table = parse_single_table(BytesIO(resp.content)).to_table()
    assert len(table) == 2 and set(table["junk"][0]) <= {*CONTROL[8:10], CONTROL[12], "\ufffd"}
    error = sync(tap, f"SELECT nothing{CONTROL} FROM lamost_star")
    assert error.status_code == 400 and "syntax error" in error_text(error)
    created = requests.post(f"{tap.url}/async", data={"LANG": "ADQL", "QUERY": f"SELECT {CONTROL} FROM x",
                                                      "RUNID": CONTROL}, timeout=60)
    for path in ("", "/parameters"):
        ElementTree.fromstring(requests.get(created.url + path, timeout=60).content)
    ElementTree.fromstring(requests.get(f"{tap.url}/async", timeout=60).content)
    requests.delete(created.url, timeout=60)


def test_adql_nesting_is_an_adql_error():
    with pytest.raises(adql.AdqlError, match="nested too deeply"):
        adql.translate("SELECT obsid FROM lamost_star WHERE obsid IN (" + "SELECT obsid FROM lamost_star WHERE "
                       "obsid IN (" * 300 + "1" + ")" * 301)


# --- probe 1, 2, 3, 8: bytes, time and disk of one query ---------------------------------------------------


def limited(db_url: str, **limits) -> Server:
    """A second server on the module's database, with some limits changed."""
    return Server(db_url, replace(CONFIG, **limits))


def active(engine) -> int:
    """TAP queries that the database is running now (a server-side cursor's query shows as its FETCH)."""
    with engine.connect() as conn:
        return conn.execute(sa.text("select count(*) from pg_stat_activity where state = 'active' "
                                    "and application_name = 'catalogdb tap' and datname = current_database()")).scalar()


def until(predicate, what: str) -> None:
    """Poll until `predicate()` holds (a job's query starting, a phase changing)."""
    for _ in range(1200):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_row_bytes_are_capped(tap):
    limit = f"the limit of {CONFIG.row_bytes} bytes per row"
    resp = sync(tap, "SELECT TOP 200 CAST('x' AS CHAR(1000000)) AS big FROM final_catalog")
    assert resp.status_code == 400 and limit in error_text(resp)
    cone = sync(tap, "SELECT CAST('x' AS CHAR(100000)) AS big FROM final_catalog WHERE "
                     "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150, 30, 0.5)) = 1")
    assert cone.status_code == 400 and limit in error_text(cone)


def test_result_and_batch_bytes_are_capped(db_url):
    limits = {"row_bytes": 1000, "batch_bytes": 20_000, "result_bytes": 50_000}
    assert replace(CONFIG, **limits).fetch_rows == 20  # rows per fetch: batch_bytes / row_bytes
    server = limited(db_url, **limits)
    try:
        resp = sync(server, "SELECT obsid, ra, dec FROM lamost_star")
        assert resp.status_code == 200  # the first rows went out before the result passed its limit
        assert 0 < resp.text.count("<TR>") < 3000
        assert resp.text.rindex('value="ERROR"') > resp.text.index("</TABLE>")
        assert "larger than the limit of 50000 bytes" in error_text(resp)
        cone = sync(server, "SELECT obsid, ra, dec FROM lamost_star WHERE "
                            "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150, 30, 2)) = 1")
        assert cone.status_code == 400 and "larger than the limit of 20000 bytes" in error_text(cone)
        small = sync(server, "SELECT TOP 10 obsid FROM lamost_star")
        assert small.status_code == 200 and small.text.count("<TR>") == 10
    finally:
        server.stop()


def test_timeout_covers_the_whole_query(db_url, engine):
    """Each fetch of one row takes well under the limit; all of them together take far more."""
    server = limited(db_url, sync_timeout_s=3, batch_rows=1)
    try:
        query = ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 100000000) "
                 "SELECT n AS probe2 FROM t WHERE MOD(n, 200000) = 0")
        resp = sync(server, query)
        assert resp.status_code == 200 and resp.text.count("<TR>") >= 2
        assert error_text(resp) == "query cancelled: it ran longer than the 3 s time limit"
        assert active(engine) == 0
    finally:
        server.stop()


def test_temp_file_limit_of_the_reader_role(db_url, engine):
    with engine.connect() as conn:
        setting = conn.execute(sa.text(
            "select setconfig from pg_db_role_setting where setrole = cast(:r as regrole) and setdatabase = "
            "(select oid from pg_database where datname = current_database())"), {"r": READER_ROLE}).scalar()
    assert "temp_file_limit=2GB" in setting
    database = engine.url.database
    with engine.begin() as conn:
        conn.execute(sa.text(f'alter role {READER_ROLE} in database "{database}" set temp_file_limit = \'1MB\''))
    server = Server(db_url)  # new connections log in with the role's setting
    try:
        resp = sync(server, "SELECT COUNT(*) AS probe3 FROM (SELECT DISTINCT a.ra + b.dec AS s FROM lamost_star a, "
                            "lamost_star b) q")
        assert resp.status_code == 400 and "temp_file_limit" in error_text(resp)
    finally:
        server.stop()
        with engine.begin() as conn:
            conn.execute(sa.text(f'alter role {READER_ROLE} in database "{database}" set temp_file_limit = \'2GB\''))


def test_fits_is_streamed(tmp_path):
    """Only a batch at a time is in memory: the rows wait in a temporary file for the header's row count."""
    fields = [Field("obsid", "long"), Field("ra", "double"), Field("class", "char", "*")]
    nbatch, rows = 200, 1000

    def batches():
        for b in range(nbatch):
            yield [(b * rows + i, 0.5 * i, "STAR" if i % 2 else "GALAXY") for i in range(rows)]

    out = tmp_path / "r.fits"
    tracemalloc.start()
    with out.open("wb") as f:
        for chunk in fits_file(fields, batches()):
            f.write(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = out.stat().st_size
    assert peak < size / 4, (peak, size)  # one batch is 1/200 of the file; the rest is numpy and pickle buffers
    with fits.open(out) as hdul:
        data = hdul[1].data
        assert len(data) == nbatch * rows and data["obsid"][-1] == nbatch * rows - 1
        assert data["class"][0] == "GALAXY" and hdul[1].header["TFORM3"] == "6A"


# --- probe 4, 6, 7, 9, 10, 13: jobs and the service around them ---------------------------------------------

LONG = "SELECT COUNT(*) AS {} FROM lamost_star a, lamost_star b, lamost_star c"  # 2.7e10 rows: runs to its limit


def test_abort_and_delete_cancel_the_query_at_once(tap, engine):
    for marker, how in (("probe4abort", "abort"), ("probe4delete", "delete")):
        created = requests.post(f"{tap.url}/async", data={"LANG": "ADQL", "QUERY": LONG.format(marker),
                                                          "PHASE": "RUN"}, timeout=60)
        job = created.url
        until(lambda: active(engine) == 1, f"{marker} running")
        if how == "abort":
            resp = requests.post(f"{job}/phase", data={"PHASE": "ABORT"}, allow_redirects=False, timeout=60)
        else:
            resp = requests.delete(job, allow_redirects=False, timeout=60)
        assert resp.status_code == 303
        assert active(engine) == 0  # cancelled before ABORT/DELETE answered
        phase = requests.get(f"{job}/phase", timeout=60)
        assert (phase.text == "ABORTED") if how == "abort" else (phase.status_code == 404)
        requests.delete(job, timeout=60)


def test_destruction_is_range_checked(tap):
    job = requests.post(f"{tap.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 obsid FROM lamost_star"},
                        timeout=60).url
    for when in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "2000-01-01T00:00:00Z"):
        resp = requests.post(f"{job}/destruction", data={"DESTRUCTION": when}, allow_redirects=False, timeout=60)
        assert resp.status_code == 400 and "DESTRUCTION must lie between now and" in error_text(resp)
        created = requests.post(f"{tap.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1", "DESTRUCTION": when},
                                allow_redirects=False, timeout=60)
        assert created.status_code == 400
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert requests.post(f"{job}/destruction", data={"DESTRUCTION": later}, allow_redirects=False,
                         timeout=60).status_code == 303
    assert requests.get(f"{job}/destruction", timeout=60).text == later
    assert requests.get(f"{tap.url}/async", timeout=60).status_code == 200
    requests.delete(job, timeout=60)


def test_quotas_on_jobs_parameters_bodies_and_results(db_url, engine):
    query = "SELECT TOP 20 obsid, ra, dec FROM lamost_star ORDER BY obsid"
    server = limited(db_url, max_jobs=4, parameter_bytes=2000, request_bytes=10_000)
    try:
        size = len(sync(server, query).content)  # the stored result of a job running `query`
    finally:
        server.stop()
    with engine.begin() as conn:
        conn.execute(sa.text("delete from tap_job"))
    server = limited(db_url, max_jobs=4, parameter_bytes=2000, request_bytes=10_000,
                     result_storage_bytes=int(2.5 * size))
    try:
        service = pyvo.dal.TAPService(server.url)
        jobs = []
        for _ in range(3):  # results of 2.5 jobs fit: the oldest goes when the third is stored
            job = service.submit_job(query)
            job.run()
            job.wait(phases=["COMPLETED", "ERROR"], timeout=60)
            assert job.phase == "COMPLETED"
            jobs.append(job.url)
        assert [requests.get(u, timeout=60).status_code for u in jobs] == [404, 200, 200]
        for _ in range(2):
            requests.post(f"{server.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1"}, timeout=60)
        full = requests.post(f"{server.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1"},
                             allow_redirects=False, timeout=60)
        assert full.status_code == 429 and int(full.headers["retry-after"]) > 0
        assert "4 jobs, its limit" in error_text(full)
        requests.delete(jobs[1], timeout=60)
        big = requests.post(f"{server.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1" + " " * 3000},
                            allow_redirects=False, timeout=60)
        assert big.status_code == 400 and "more than the limit of 2000 bytes" in error_text(big)
        huge = requests.post(f"{server.url}/sync", data={"LANG": "ADQL", "QUERY": "SELECT 1" + " " * 20_000},
                             timeout=60)
        assert huge.status_code == 413 and "larger than the limit of 10000 bytes" in error_text(huge)
        chunked = requests.post(f"{server.url}/sync", data=iter([b"LANG=ADQL&QUERY=SELECT+1"] + [b"+" * 1000] * 20),
                                headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
        assert chunked.status_code == 413
    finally:
        server.stop()
        with engine.begin() as conn:
            conn.execute(sa.text("delete from tap_job"))


def test_full_pool_or_missing_database_gives_503(embedded_server, db_url):
    server = limited(db_url, pool_size=1, pool_wait_s=0.2)
    reader = server.server.config.app.state.service.runner.reader
    held = [reader.connect() for _ in range(2)]  # the pool's one connection and its one overflow
    try:
        resp = sync(server, "SELECT TOP 1 obsid FROM lamost_star")
        assert resp.status_code == 503 and int(resp.headers["retry-after"]) > 0
        assert "busy" in error_text(resp)
        assert "<vosi:available>true</vosi:available>" in requests.get(f"{server.url}/availability", timeout=60).text
    finally:
        for conn in held:
            conn.close()
        server.stop()
    url = create_database(embedded_server)
    admin.init(sa.create_engine(url), "compat")
    server = Server(url)
    try:
        assert sync(server, "SELECT TOP 1 obsid FROM lamost_star").status_code == 200
        name = sa.engine.make_url(url).database
        root = sa.create_engine(embedded_server, isolation_level="AUTOCOMMIT")
        with root.connect() as conn:
            conn.execute(sa.text(f'drop database "{name}" with (force)'))
        root.dispose()
        for _ in range(2):  # the pooled connection that broke, then a new one to the missing database
            resp = sync(server, "SELECT TOP 1 obsid FROM lamost_star")
            assert resp.status_code == 503 and int(resp.headers["retry-after"]) > 0
        assert "<vosi:available>false</vosi:available>" in requests.get(f"{server.url}/availability",
                                                                        timeout=60).text
    finally:
        server.stop()


def test_stop_cancels_queries_and_a_job_interrupted_twice_ends_in_error(db_url, engine):
    marker = "probe10"
    server = Server(db_url)
    job_id = requests.post(f"{server.url}/async", data={"LANG": "ADQL", "QUERY": LONG.format(marker),
                                                        "PHASE": "RUN"}, timeout=60).url.rsplit("/", 1)[1]
    for attempt in (1, 2):
        until(lambda: active(engine) == 1, f"{marker} running (start {attempt})")
        server.stop()
        assert active(engine) == 0
        with engine.connect() as conn:
            phase, attempts = conn.execute(sa.text("select phase, attempts from tap_job where job_id = :j"),
                                           {"j": job_id}).one()
        assert (phase, attempts) == ("EXECUTING", attempt)
        server = Server(db_url)  # the first restart runs the job again; the second one does not
    try:
        job = requests.get(f"{server.url}/async/{job_id}", timeout=60).text
        assert "<uws:phase>ERROR</uws:phase>" in job and "stopped 2 times while the job ran" in job
        assert active(engine) == 0
    finally:
        server.stop()


def test_proxies_and_host_are_trusted_only_when_configured(db_url):
    assert proxy_options(CONFIG) == {"proxy_headers": False, "forwarded_allow_ips": None}
    assert proxy_options(replace(CONFIG, trusted_proxies="10.0.0.1, 10.0.0.2")) == \
        {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.1", "10.0.0.2"]}
    base = "https://archive.example.org/tap"
    server = limited(db_url, base_url=base)
    spoof = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher",
             "X-Forwarded-For": "6.6.6.6"}
    try:
        caps = requests.get(f"{server.url}/capabilities", headers=spoof, timeout=60).text
        assert f"{base}/tables" in caps and "evil" not in caps
        created = requests.post(f"{server.url}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1"}, headers=spoof,
                                allow_redirects=False, timeout=60)
        assert created.headers["location"].startswith(f"{base}/async/")
        job_id = created.headers["location"].rsplit("/", 1)[1]
        assert f"{base}/async/{job_id}" in requests.get(f"{server.url}/async", headers=spoof, timeout=60).text
        requests.delete(f"{server.url}/async/{job_id}", allow_redirects=False, timeout=60)
    finally:
        server.stop()


# --- Build 6: result semantics ----------------------------------------------------------------------------


def test_maxrec_equal_to_the_row_count_is_no_overflow(tap):
    for fmt in ("votable", "votable/b2"):
        resp = sync(tap, "SELECT obsid FROM lamost_star", MAXREC="3000", RESPONSEFORMAT=fmt)
        assert "OVERFLOW" not in resp.text and len(parse_single_table(BytesIO(resp.content)).to_table()) == 3000
    job = pyvo.dal.TAPService(tap.url).submit_job("SELECT obsid FROM lamost_star", maxrec=3000)
    job.run()
    job.wait(phases=["COMPLETED", "ERROR"], timeout=60)
    assert "OVERFLOW" not in requests.get(job.result_uri, timeout=60).text
    job.delete()
    over = sync(tap, "SELECT obsid FROM lamost_star", MAXREC="2999")
    assert over.text.rindex('value="OVERFLOW"') > over.text.index("</TABLE>")


def test_integer_nulls_survive_binary2(tap, engine):
    query = ("SELECT TOP 50 obsid, CASE WHEN MOD(obsid, 3) = 0 THEN NULL ELSE CAST(MOD(obsid, 100) AS SMALLINT) END "
             "AS s, CASE WHEN MOD(obsid, 4) = 0 THEN NULL ELSE CAST(MOD(obsid, 1000) AS INTEGER) END AS i, "
             "CASE WHEN MOD(obsid, 5) = 0 THEN NULL ELSE obsid END AS l FROM lamost_star ORDER BY obsid")
    sql = adql.translate(query)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(sql.sql).all()
    tables = {fmt: parse_single_table(BytesIO(sync(tap, query, RESPONSEFORMAT=fmt).content)).to_table()
              for fmt in ("votable", "votable/b2")}
    via_pyvo = pyvo.dal.TAPService(tap.url).run_sync(query, format="votable/b2").to_table()
    for table in (*tables.values(), via_pyvo):
        for k, name in enumerate(("s", "i", "l"), start=1):
            column = table[name]
            assert column.dtype.kind == "i"
            got = [None if m else int(v) for v, m in zip(column.data, np.ma.getmaskarray(column), strict=True)]
            assert got == [r[k] for r in rows], name


def test_every_reader_connection_is_read_only(db_url):
    """The first connection too (the one that finds out whether the role can log in)."""
    runner = Runner(db_url, CONFIG)
    try:
        raws = [runner.reader.raw_connection() for _ in range(3)]
        for raw in raws:
            settings = raw.driver_connection.execute(
                "select current_user, current_setting('default_transaction_read_only'), "
                "current_setting('application_name'), current_setting('temp_file_limit')").fetchone()
            assert settings == (READER_ROLE, "on", "catalogdb tap", "2GB")
        for raw in raws:
            raw.close()
    finally:
        runner.close()


def test_a_connection_keeps_its_prepared_cone_search(db_url):
    """Build 2, the fast path: the pool's reset no longer throws the prepared statement away (DEALLOCATE ALL)."""
    runner = Runner(db_url, replace(CONFIG, pool_size=1))
    try:
        for radius in (0.1, 0.2, 0.3):
            query = f"SELECT obsid FROM final_catalog WHERE CONTAINS(POINT('ICRS', ra, dec), " \
                    f"CIRCLE('ICRS', 150, 30, {radius})) = 1"
            result = runner.open(query, 100, 10)
            assert sum(len(b) for b in result.batches()) > 0
        with runner.reader.connect() as conn:
            prepared = conn.execute(sa.text("select custom_plans from pg_prepared_statements "
                                            "where statement ilike '%q3c_join%'")).scalars().all()
        assert prepared == [3]  # prepared once, run three times
    finally:
        runner.close()


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CATALOGDB_TAP_SYNC_TIMEOUT", "12.5")
    monkeypatch.setenv("CATALOGDB_TAP_ROW_BYTES", "4096")
    monkeypatch.setenv("CATALOGDB_TAP_BASE_URL", "https://archive.example.org/tap")
    config = TapConfig.from_env()
    assert (config.sync_timeout_s, config.row_bytes, config.base_url) == (12.5, 4096, "https://archive.example.org/tap")
    assert config.result_bytes == TapConfig().result_bytes
