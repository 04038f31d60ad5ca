"""Comparison catalogues, the comparison views (Figs. 10-11) and `write_report` on a small mock pipeline."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from rich.console import Console

from catalogdb.demo import run_demo
from catalogdb.ingest.files import ingest_files
from catalogdb.mock.comparisons import SOURCES, write_comparisons
from catalogdb.report import write_report
from conftest import require

FIGURES = {"fig01_kiel.png", "fig05_cnn_test.png", "fig08_targets_venn.png", "fig09_cmd.png",
           "fig10_distances.png", "fig11_parameters.png", "fig12_xy.png", "fig13_rz.png", "fig14_gradients.png"}


@pytest.fixture(scope="module")
def demo(embedded_server, tmp_path_factory):
    """The demo pipeline at 1,500 stars with the mock comparison catalogues ingested: (engine, folder)."""
    tmp = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATALOGDB_URL", embedded_server)
        mp.setenv("CATALOGDB_HOME", str(tmp / "home"))
        run_demo(stars=1500, keep=True, out=tmp / "demo", max_steps=20, width_scale=0.05,
                 console=Console(record=True, width=140))
        survey = tmp / "demo" / "survey"
        write_comparisons(survey, seed=1)  # deterministic: the same files when write_survey wrote them too
        engine = sa.create_engine(sa.engine.make_url(embedded_server).set(database="catalogdb_demo"))
        for source, path in SOURCES.items():
            ingest_files(engine, source, [survey / path])  # a no-op when the demo ingested them already
        with engine.connect() as conn:
            for table in ("apogee_starhorse", "apogee_distmass", "apogee_astronn", "galah_star"):
                assert conn.execute(sa.text(f"select count(*) from {table}")).scalar() > 0, table
        yield engine, tmp
        engine.dispose()


def _all(conn, sql: str) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(sa.text(sql))]


def _f(v) -> float:
    """A REAL column's value as the database's float8 cast sees it (the text protocol rounds float4)."""
    return np.nan if v is None else float(np.float32(v))


def _stats(d: np.ndarray) -> tuple[int, float, float]:
    return len(d), float(np.mean(d)), float(np.std(d, ddof=1))


def test_compare_distance_equals_numpy(demo):
    engine, _ = demo
    with engine.connect() as conn:
        final = {r["obsid"]: _f(r["cnn_distance"]) for r in _all(conn, "select obsid, cnn_distance from final_catalog")}
        best = _all(conn, "select obsid, apogee_id, telescope, field from xmatch_lamost_apogee where best")
        vac = {name: _all(conn, f"select apogee_id, telescope, field, {column} as d from {table}")
               for name, table, column in (("starhorse", "apogee_starhorse", "dist50_pc"),
                                           ("distmass", "apogee_distmass", "weighted_dist"),
                                           ("astronn", "apogee_astronn", "weighted_dist"))}
        star = _all(conn, "select * from compare_distance_star")
        view = _all(conn, "select * from compare_distance order by panel")

    # one catalogue row per APOGEE_ID: the best match's (telescope, field) first, then by telescope, field
    per_star: dict[int, dict[str, float]] = {}
    for m in best:
        if m["obsid"] not in final:
            continue
        values = {}
        for name, rows in vac.items():
            cands = [r for r in rows if r["apogee_id"] == m["apogee_id"] and r["d"] is not None and r["d"] > 0]
            cands.sort(key=lambda r: (not (r["telescope"] == m["telescope"] and r["field"] == m["field"]),
                                      r["telescope"], r["field"]))
            values[name] = _f(cands[0]["d"]) if cands else np.nan
        if any(np.isfinite(v) for v in values.values()):
            per_star[m["obsid"]] = {"this work": final[m["obsid"]], "StarHorse": values["starhorse"],
                                    "DistMass": values["distmass"], "astroNN": values["astronn"]}
    assert {r["obsid"] for r in star} == set(per_star)
    assert len(view) == 6 and [r["panel"] for r in view] == [1, 2, 3, 4, 5, 6]
    for row in view:
        x = np.array([s[row["catalogue"]] for s in per_star.values()])
        y = np.array([s[row["reference"]] for s in per_star.values()])
        ok = (x > 0) & (y > 0)  # NaN compares False
        n, mean, std = _stats(x[ok] - y[ok])
        nf, mean_f, std_f = _stats((x[ok] - y[ok]) / y[ok])
        assert row["n"] == n > 10, row
        # PostgreSQL's avg / stddev_samp in float8 over the same float32 values: summation order only;
        # abs covers means near 0
        assert row["mean_diff"] == pytest.approx(mean, rel=1e-9, abs=1e-6)
        assert row["std_diff"] == pytest.approx(std, rel=1e-9)
        assert row["mean_frac"] == pytest.approx(mean_f, rel=1e-9, abs=1e-12)
        assert row["std_frac"] == pytest.approx(std_f, rel=1e-9)
    # the mock's catalogues carry their biases: StarHorse short, DistMass and astroNN long (DISTANCE_MODEL:
    # +12-13% expected, per-star scatter 10-13%)
    pair = {(r["catalogue"], r["reference"]): r for r in view}
    assert pair[("DistMass", "StarHorse")]["mean_frac"] > 0.03
    assert pair[("astroNN", "StarHorse")]["mean_frac"] > 0.03


def test_compare_parameters_equals_numpy_with_the_papers_cuts(demo):
    engine, _ = demo
    with engine.connect() as conn:
        final = _all(conn, "select obsid, snrg, gaia_source_id, cnn_teff, cnn_logg, cnn_feh from final_catalog")
        best = {r["obsid"]: r for r in _all(conn, "select obsid, apogee_id, telescope, field "
                                                  "from xmatch_lamost_apogee where best")}
        apogee = {(r["apogee_id"], r["telescope"], r["field"]): r for r in _all(conn, "select * from apogee_star")}
        galah = _all(conn, "select * from galah_star")
        star = _all(conn, "select * from compare_parameters_star")
        view = _all(conn, "select * from compare_parameters")

    def below(v, limit) -> bool:
        return v is not None and v < limit

    pairs: dict[str, list[tuple[dict, tuple[float, float, float]]]] = {"APOGEE DR17": [], "GALAH DR3": []}
    for f in final:
        if f["snrg"] is None or not f["snrg"] > 50:
            continue
        m = best.get(f["obsid"])
        a = m and apogee[(m["apogee_id"], m["telescope"], m["field"])]
        if a and a["starflag"] == 0 and below(a["teff_err"], 200) and below(a["logg_err"], 0.2) \
                and below(a["fe_h_err"], 0.2) and None not in (a["teff"], a["logg"], a["fe_h"]):
            pairs["APOGEE DR17"].append((f, tuple(_f(a[k]) for k in ("teff", "logg", "fe_h"))))
        good = [g for g in galah if g["dr3_source_id"] == f["gaia_source_id"] and g["flag_sp"] == 0
                and g["flag_fe_h"] == 0 and g["red_flag"] == 0 and below(g["e_teff"], 200)
                and below(g["e_logg"], 0.2) and below(g["e_fe_h"], 0.2)
                and None not in (g["teff"], g["logg"], g["fe_h"])]
        if good:
            g = min(good, key=lambda g: (g["flag_repeat"] or 0, g["sobject_id"]))
            pairs["GALAH DR3"].append((f, tuple(_f(g[k]) for k in ("teff", "logg", "fe_h"))))

    assert sorted((r["survey"], r["obsid"]) for r in star) == sorted(
        (s, f["obsid"]) for s, rows in pairs.items() for f, _ in rows)
    assert {(r["survey"], r["parameter"]) for r in view} == {
        (s, p) for s in pairs for p in ("teff", "logg", "feh")}
    for row in view:
        k = ("teff", "logg", "feh").index(row["parameter"])
        d = np.array([_f(f[f"cnn_{row['parameter']}"]) - float(ref[k]) for f, ref in pairs[row["survey"]]])
        d = d[np.isfinite(d)]
        n, bias, scatter = _stats(d)
        assert row["n"] == n >= 3, row
        # float8 avg / stddev_samp over the same values as numpy: summation order only; abs for biases near 0
        assert row["bias"] == pytest.approx(bias, rel=1e-9, abs=1e-9)
        assert row["scatter"] == pytest.approx(scatter, rel=1e-9)
    # the cuts remove something in the mock: flagged GALAH spectra exist among the matched ones
    assert any(g["flag_sp"] or g["flag_fe_h"] or g["red_flag"] for g in galah)
    assert len({r["obsid"] for r in star if r["survey"] == "GALAH DR3"}) < len(
        {f["obsid"] for f in final if any(g["dr3_source_id"] == f["gaia_source_id"] for g in galah)})


def _not_blank(png: Path) -> float:
    """Share of pixels that differ from the page background."""
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    background = np.median(img.reshape(-1, 3), axis=0)
    return float((np.abs(img - background).sum(axis=-1) > 0.1).mean())


def test_write_report_figures_and_page_rendered_by_chromium(demo):
    engine, tmp = demo
    out = tmp / "report"
    files = write_report(engine, out)
    assert {p.name for p in files} == FIGURES | {"index.html"} and files[-1].name == "index.html"
    for p in files[:-1]:
        assert p.stat().st_size > 10_000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
        # catches a blank canvas only: a 10x4 in figure of two empty axes already scores 2.3% and 18 kB
        assert _not_blank(p) > 0.01, p
    page = (out / "index.html").read_text()
    with engine.connect() as conn:
        n_final = conn.execute(sa.text("select count(*) from final_catalog")).scalar()
        distance = _all(conn, "select * from compare_distance order by panel")
        cutflow = _all(conn, "select * from training_cutflow order by stage")
    for name in FIGURES:
        assert f"src='{name}'" in page
    assert f"<b>{n_final:,}</b> spectra" in page
    assert all(f">{r['count']:,}<" in page for r in cutflow)
    assert all(f">{r['n']:,}<" in page and f"{100 * r['mean_frac']:+.1f}%" in page for r in distance)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require(chromium is not None, "chromium is not installed (Debian packages chromium and chromium-driver)")
    shot = tmp / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--screenshot={shot}",
                    "--window-size=1200,900", (out / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
    assert _not_blank(shot) > 0.02  # text and tables, not an empty white page
