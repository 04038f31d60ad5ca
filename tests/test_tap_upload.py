"""TAP UPLOAD, DataLink and Simple Cone Search on a real uvicorn server, through pyvo (and raw HTTP)."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess

import numpy as np
import pytest
import pyvo
import requests
import sqlalchemy as sa
import test_tap
from astropy.io import fits
from astropy.io.votable import from_table, parse_single_table
from astropy.table import Table
from test_tap import BIG, CENTRE, CONFIG, Server, fill

from catalogdb.db import admin
from catalogdb.spectra import GRID
from catalogdb.tap import adql, upload
from catalogdb.tap.upload import UploadLimits
from conftest import create_database, require

LIMITS = UploadLimits(max_rows=2000, max_bytes=400_000)
RADIUS_DEG = 2 / 3600
SPECTRA = 5  # obsids BIG .. BIG+4 get a real stored flux


@pytest.fixture(scope="module")
def db_url(embedded_server) -> str:
    url = create_database(embedded_server)
    engine = sa.create_engine(url)
    admin.init(engine, "compat")
    fill(engine)
    rng = np.random.default_rng(7)
    with engine.begin() as conn:
        for i in range(SPECTRA):
            flux = rng.normal(1.0, 0.1, len(GRID)).astype("<f4")
            conn.execute(sa.text("update spectrum set flux = :f, path = :p, checksum = :c where obsid = :o"),
                         {"f": flux.tobytes(), "p": f"/data/lamost/spec-{i}.fits.gz", "c": f"{i:064x}",
                          "o": BIG + i})
    engine.dispose()
    return url


engine = test_tap.engine  # test_tap's fixture, on this module's db_url


@pytest.fixture(scope="module")
def tap(db_url):
    server = Server(db_url, dataclasses.replace(CONFIG, upload=LIMITS))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tap):
    return pyvo.dal.TAPService(tap.url)


@pytest.fixture(scope="module")
def positions(engine) -> Table:
    """1,000 positions: catalogue rows moved by up to 3 arcsec, so some fall within 2 arcsec and some not."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select ra, dec from final_catalog order by obsid limit 1000")).all()
    rng = np.random.default_rng(11)
    ra = np.array([r.ra for r in rows]) + rng.uniform(-3, 3, len(rows)) / 3600 / np.cos(np.radians(CENTRE[1]))
    dec = np.array([r.dec for r in rows]) + rng.uniform(-3, 3, len(rows)) / 3600
    table = Table({"pos_id": np.arange(len(rows), dtype=np.int32), "ra": ra, "dec": dec})
    table["ra"].unit = table["dec"].unit = "deg"
    return table


XMATCH = (f"SELECT t.pos_id, f.obsid FROM TAP_UPLOAD.t AS t JOIN final_catalog AS f "
          f"ON 1 = CONTAINS(POINT('ICRS', f.ra, f.dec), CIRCLE('ICRS', t.ra, t.dec, {RADIUS_DEG!r}))")


def sql_pairs(engine, positions: Table) -> set[tuple[int, int]]:
    """The same crossmatch written in SQL against the database."""
    with engine.begin() as conn:
        conn.execute(sa.text("create temporary table pos (pos_id int, ra float8, dec float8) on commit drop"))
        conn.execute(sa.text("insert into pos values (:i, :r, :d)"),
                     [{"i": int(i), "r": float(r), "d": float(d)} for i, r, d in positions.iterrows()])
        return {(r.pos_id, r.obsid) for r in conn.execute(sa.text(
            "select p.pos_id, f.obsid from pos p join final_catalog f on q3c_join(p.ra, p.dec, f.ra, f.dec, :r)"),
            {"r": RADIUS_DEG})}


def pairs(table) -> set[tuple[int, int]]:
    return {(int(p), int(o)) for p, o in zip(table["pos_id"], table["obsid"], strict=True)}


# --- UPLOAD ------------------------------------------------------------------------------------------


def test_upload_crossmatch_equals_sql(service, engine, positions):
    expected = sql_pairs(engine, positions)
    assert 200 < len(expected) < 1000  # offsets up to 3" in each axis within 2": a real mix of hits and misses
    got = service.run_sync(XMATCH, uploads={"t": positions}, maxrec=5000).to_table()
    assert pairs(got) == expected
    # the table lived for its query only
    with pytest.raises(pyvo.dal.DALQueryError, match="TAP_UPLOAD.t not found"):
        service.run_sync("SELECT * FROM TAP_UPLOAD.t")


def test_upload_join_translates_to_q3c_join_on_the_index(engine, positions):
    uploaded = upload.parse("t", _votable_bytes(positions[:50], "binary2"), LIMITS)
    assert uploaded.position == ("ra", "dec")
    t = adql.translate(XMATCH, uploads=(uploaded.table,))
    assert "q3c_join(t.ra, t.dec, f.ra, f.dec" in t.sql.lower()
    dist = adql.translate("SELECT t.pos_id FROM TAP_UPLOAD.t AS t, final_catalog AS f WHERE "
                          "DISTANCE(POINT('ICRS', t.ra, t.dec), POINT('ICRS', f.ra, f.dec)) < 0.001",
                          uploads=(uploaded.table,)).sql.lower()
    assert "q3c_join(t.ra, t.dec, f.ra, f.dec" in dist and "q3c_dist(t.ra, t.dec, f.ra, f.dec) < 0.001" in dist
    with engine.connect() as conn:
        upload.create(conn.connection.driver_connection, [uploaded])
        conn.exec_driver_sql("set local enable_seqscan = off")
        plan = "\n".join(conn.exec_driver_sql(f"explain {t.sql}", t.params).scalars())
    assert "final_catalog_q3c_idx" in plan, plan


def test_upload_async_job(service, engine, positions):
    result = service.run_async(XMATCH, uploads={"t": positions}, maxrec=5000)
    assert pairs(result.to_table()) == sql_pairs(engine, positions)
    links = result.get_adhocservice_by_ivoid("ivo://ivoa.net/std/DataLink")  # the job remembers its host
    access = next(p.value for p in links.params if p.name == "accessURL")
    assert access == service.baseurl.rsplit("/tap", 1)[0] + "/datalink/links"


def _post(tap, query: str, files: dict, upload: str, **extra) -> requests.Response:
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "UPLOAD": upload, **extra}
    return requests.post(f"{tap.url}/sync", data=data, files=files, timeout=60)


def _votable_bytes(table: Table, fmt: str) -> bytes:
    buf = io.BytesIO()
    votable = from_table(table)
    for field in votable.get_first_table().fields:
        if field.datatype == "long":  # BINARY (1) marks a NULL integer with a declared null value
            field.values.null = -9
    votable.to_xml(buf, tabledata_format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["binary2", "binary", "tabledata"])
def test_upload_serialisations_with_nulls(tap, fmt):
    table = Table({"k": np.ma.array([1, 2, 3], mask=[False, True, False], dtype=np.int64),
                   "name": ["a", "b<&>", "c"], "x": np.array([0.5, np.nan, 2.5], dtype=np.float32),
                   "ok": [True, False, True]})
    resp = _post(tap, "SELECT k, name, x, ok FROM TAP_UPLOAD.mine ORDER BY name", {"f": _votable_bytes(table, fmt)},
                 "mine,param:f")
    assert resp.status_code == 200, resp.text
    got = parse_single_table(io.BytesIO(resp.content)).to_table()
    assert list(got["name"]) == ["a", "b<&>", "c"]
    assert list(np.ma.getmaskarray(got["k"])) == [False, True, False] and got["k"][2] == 3
    assert got["x"][0] == np.float32(0.5) and list(got["ok"]) == [True, False, True]


def test_bad_uploads_get_400_naming_the_parameter(tap, positions):
    ok = {"f": _votable_bytes(positions[:3], "tabledata")}
    query = "SELECT * FROM TAP_UPLOAD.t"
    cases = [
        (ok, "t", "UPLOAD 't': expected name,param:part"),
        (ok, "t,param:g", "no multipart part 'g'"),
        (ok, "1t,param:f", "table name must be a letter"),
        (ok, "t,param:f;T,param:f", "table T is given twice"),
        (ok, "t,ftp://example.org/t.xml", "neither param:part nor an http(s) URL"),
        (ok, "t,https://example.org/t.xml", "does not fetch tables from URLs"),
        ({"f": b"<VOTABLE><RESOURCE>"}, "t,param:f", "UPLOAD t: not a readable VOTable"),
        ({"f": _votable_bytes(Table({"a": [1] * (LIMITS.max_rows + 1)}), "binary2")}, "t,param:f",
         f"more than the {LIMITS.max_rows} allowed"),
        ({"f": b" " * (LIMITS.max_bytes + 1)}, "t,param:f", f"larger than the {LIMITS.max_bytes} bytes allowed"),
    ]
    for files, value, words in cases:
        resp = _post(tap, query, files, value)
        assert resp.status_code == 400, (value, resp.text)
        assert 'value="ERROR"' in resp.text and words in resp.text, (value, resp.text)
    created = requests.post(f"{tap.url}/async", data={"LANG": "ADQL", "QUERY": query, "UPLOAD": "t,param:g"},
                            files=ok, allow_redirects=False, timeout=60)
    assert created.status_code == 400 and "no multipart part 'g'" in created.text


# --- DataLink -------------------------------------------------------------------------------------------


def stored_flux(engine, obsid: int) -> np.ndarray:
    with engine.connect() as conn:
        raw = conn.execute(sa.text("select flux from spectrum where obsid = :o"), {"o": obsid}).scalar_one()
    return np.frombuffer(raw, dtype="<f4")


def test_iter_datalinks_reaches_the_stored_spectrum(service, engine):
    result = service.run_sync(f"SELECT TOP {SPECTRA} obsid, ra, dec, cnn_teff FROM final_catalog ORDER BY obsid")
    seen = 0
    # pyvo 1.9's batched mode matches the links' ID (char, as DataLink 1.1 declares it) against the obsid
    # column's int64 values and never finds them; its one-request-per-row mode follows the descriptor as is.
    for links in result.iter_datalinks(preserve_order=True):
        this = [r for r in links.bysemantics("#this", include_narrower=False)]
        assert {r.content_type for r in this} == {"application/x-votable+xml", "application/fits"}
        obsid = int(links.original_row["obsid"])
        assert this[0]["ID"] == str(obsid)
        expected = stored_flux(engine, obsid)
        votable_link = next(r for r in this if r.content_type == "application/x-votable+xml")
        spectrum = parse_single_table(io.BytesIO(requests.get(votable_link.access_url, timeout=30).content))
        assert np.array_equal(spectrum.array["flux"].data, expected)  # float32, bit for bit
        assert np.array_equal(spectrum.array["wavelength"].data, GRID)
        fits_link = next(r for r in this if r.content_type == "application/fits")
        with fits.open(io.BytesIO(requests.get(fits_link.access_url, timeout=30).content)) as hdul:
            assert np.array_equal(hdul["SPECTRUM"].data["FLUX"], expected)
            assert hdul["SPECTRUM"].header["OBSID"] == obsid
        progenitor = next(links.bysemantics("#progenitor", include_narrower=False))
        assert f"spec-{obsid - BIG}.fits.gz" in progenitor.description
        assert f"{obsid - BIG:064x}" in progenitor.description
        model = next(links.bysemantics("#auxiliary", include_narrower=False))
        assert requests.get(model.access_url, timeout=30).json()["model_id"] == "m1"
        seen += 1
    assert seen == SPECTRA


def test_datalink_unknown_id_is_an_error_row(tap):
    root = tap.url.rsplit("/tap", 1)[0]
    doc = parse_single_table(io.BytesIO(requests.get(f"{root}/datalink/links", params={"ID": ["12", "x"]},
                                                     timeout=30).content)).to_table()
    assert list(doc["ID"]) == ["12", "x"]
    assert doc["error_message"][0].startswith("NotFoundFault") and doc["error_message"][1].startswith("UsageFault")
    assert requests.get(f"{root}/datalink/spectrum", params={"ID": "12"}, timeout=30).status_code == 404


def test_tap_results_without_obsid_carry_no_descriptor(tap):
    text = requests.get(f"{tap.url}/sync", params={"LANG": "ADQL", "QUERY": "SELECT TOP 1 ra FROM final_catalog"},
                        timeout=30).text
    assert "adhoc:service" not in text


# --- Simple Cone Search ---------------------------------------------------------------------------------


def test_cone_search_equals_sql(tap, engine):
    root = tap.url.rsplit("/tap", 1)[0]
    with engine.connect() as conn:
        expected = set(conn.execute(sa.text("select obsid from final_catalog where q3c_radial_query(ra, dec, "
                                            ":a, :d, 0.1)"), {"a": CENTRE[0], "d": CENTRE[1]}).scalars())
    assert 10 < len(expected) < 1000
    result = pyvo.dal.conesearch(f"{root}/scs", pos=CENTRE, radius=0.1)
    assert {int(v) for v in result["obsid"]} == expected
    assert result[0].pos.ra.deg == pytest.approx(float(result["ra"][0]))  # SCS 1.03 UCDs found by pyvo
    brief = pyvo.dal.conesearch(f"{root}/scs", pos=CENTRE, radius=0.1, verbosity=1).to_table()
    assert brief.colnames == ["obsid", "ra", "dec"]


def test_cone_search_errors(tap):
    root = tap.url.rsplit("/tap", 1)[0]
    for params, words in (({"RA": "1", "DEC": "2"}, "SR is required"), ({"RA": "x", "DEC": "2", "SR": "1"}, "RA must"),
                          ({"RA": "1", "DEC": "95", "SR": "1"}, "DEC must be between"),
                          ({"RA": "1", "DEC": "2", "SR": "1", "VERB": "7"}, "VERB must")):
        text = requests.get(f"{root}/scs", params=params, timeout=30).text
        assert '<INFO ID="Error" name="Error" value=' in text and words in text
    with pytest.raises(pyvo.dal.DALQueryError):
        pyvo.dal.conesearch(f"{root}/scs", pos=(1, 2), radius=500)


def test_capabilities_declare_upload_datalink_and_cone_search(tap):
    caps = requests.get(f"{tap.url}/capabilities", timeout=30).text
    assert 'ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"' in caps and "upload-http" not in caps
    assert f'<hard unit="byte">{LIMITS.max_bytes}</hard>' in caps
    assert 'standardID="ivo://ivoa.net/std/DataLink#links-1.1"' in caps
    assert 'standardID="ivo://ivoa.net/std/ConeSearch"' in caps


def test_datalinklint_accepts_the_links_document(tap):
    require(shutil.which("stilts") is not None, "STILTS is not installed (Debian package stilts)")
    root = tap.url.rsplit("/tap", 1)[0]
    for obsid in (str(BIG), "12"):  # links, and an error row
        out = subprocess.run(["stilts", "datalinklint", "report=EWF", f"votable={root}/datalink/links?ID={obsid}"],
                             capture_output=True, text=True, timeout=120).stdout
        totals = [line for line in out.splitlines() if line.startswith("Totals:")]
        assert totals and "Errors: 0" in totals[-1] and "Warnings: 0" in totals[-1], out


def test_upload_crossmatch_on_real_q3c(pg15_server):
    url = create_database(pg15_server)
    engine = sa.create_engine(url)
    assert admin.init(engine, "auto") == "extension"
    fill(engine, 500)
    server = Server(url, dataclasses.replace(CONFIG, upload=LIMITS))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("select ra, dec from final_catalog order by obsid limit 300")).all()
        rng = np.random.default_rng(5)
        mine = Table({"pos_id": np.arange(len(rows), dtype=np.int32),
                      "ra": [r.ra + rng.uniform(-3, 3) / 3600 for r in rows],
                      "dec": [r.dec + rng.uniform(-3, 3) / 3600 for r in rows]})
        got = pyvo.dal.TAPService(server.url).run_sync(XMATCH, uploads={"t": mine}, maxrec=5000).to_table()
        expected = sql_pairs(engine, mine)
        assert len(expected) > 50 and pairs(got) == expected
    finally:
        server.stop()
        engine.dispose()
