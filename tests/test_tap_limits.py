"""Limits of the TAP service that a hostile or careless request must not get past (issue 21, the probe)."""

from __future__ import annotations

import http.client
from io import BytesIO
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
import requests
import test_tap
from astropy.io.votable import parse_single_table

from catalogdb.tap import adql

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
