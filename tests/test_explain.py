"""`catalogdb explain`: Shapley importance per pixel, stored per model, label and group (Sect. 5.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from catalogdb.cnn import LABELS, N_PIXELS
from catalogdb.errors import CatalogdbError
from catalogdb.spectra import GRID


@pytest.fixture(scope="module")
def explained(trained_mock, tmp_path_factory):
    from catalogdb.explain import explain_model

    engine, model_id = trained_mock
    figure = tmp_path_factory.mktemp("fig") / "importance.png"
    result = explain_model(engine, model_id, stars=80, split="teff:5000", nsamples=8, background=30, figure=figure)
    return engine, model_id, result


def test_parse_split_names_the_papers_groups():
    from catalogdb.explain import parse_split

    assert parse_split("teff:5000").names == ("teff>5000", "teff<=5000")
    assert parse_split("feh:0").names == ("feh>=0", "feh<0")
    hot = parse_split("teff:5000").high(np.array([4999.0, 5000.0, 5001.0]))
    assert hot.tolist() == [False, False, True]  # hot is Teff > 5000 K, cool Teff <= 5000 K
    rich = parse_split("FeH:0" if False else "feh:0").high(np.array([-0.1, 0.0, 0.2]))
    assert rich.tolist() == [False, True, True]  # metal-rich is [Fe/H] >= 0
    for bad in ("logg:4", "teff", "teff:hot", "feh:nan"):
        with pytest.raises(CatalogdbError):
            parse_split(bad)


def test_group_importance_is_mean_abs_normalised_per_label():
    from catalogdb.explain import group_importance

    phi = np.zeros((3, N_PIXELS, len(LABELS)), dtype=np.float32)
    phi[0, 10, 0], phi[1, 10, 0], phi[2, 20, 0] = 2.0, -2.0, 4.0  # signs cancel in a mean, not in a mean |phi|
    phi[:, 5, 1] = 1.0
    out = group_importance(phi, {"a": np.array([True, True, False]), "b": np.array([False, False, True]),
                                 "none": np.zeros(3, dtype=bool)})
    assert out["a"][0, 10] == pytest.approx(1.0) and out["a"][0, 20] == 0.0
    assert out["b"][0, 20] == pytest.approx(1.0)
    assert np.nansum(out["a"], axis=1)[1] == pytest.approx(1.0)
    assert np.isnan(out["none"]).all()


def test_explain_stores_normalised_curves_per_label_and_group(explained):
    engine, model_id, result = explained
    assert result["model_id"] == model_id and result["stars"] == 80 and result["networks"] == 1
    groups = result["groups"]
    assert groups["all"] == 80 == groups["teff>5000"] + groups["teff<=5000"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select grp, label, count(*), sum(importance), min(importance) "
                                    "from feature_importance where model_id = :m group by grp, label"),
                            {"m": model_id}).all()
    stored = {(g, label): (n, total, low) for g, label, n, total, low in rows}
    expected_groups = {g for g, n in groups.items() if n > 0}
    assert {g for g, _ in stored} == expected_groups
    for (_, label), (n, total, low) in stored.items():
        # 4875 REAL values written with 7 digits and added by sum(real), which accumulates in float4
        assert label in LABELS and n == N_PIXELS and total == pytest.approx(1.0, rel=1e-4) and low >= 0
    assert Path(result["figure"]).stat().st_size > 10_000


def test_teff_importance_peaks_at_the_mock_lines(explained):
    """The top Teff pixels sit on lines the mock put into the spectra, far more often than pixels at random."""
    from catalogdb.explain import read_importance
    from catalogdb.mock.spectra import line_list

    engine, model_id, _ = explained
    with engine.connect() as conn:  # the network learned Teff: attributions of an untrained one say little
        scatter = conn.execute(sa.text("select (metrics->'labels'->'teff'->>'scatter')::float8 from cnn_model "
                                       "where model_id = :m"), {"m": model_id}).scalar_one()
        spread = conn.execute(sa.text("select stddev(teff) from training_set where split = 'test'")).scalar_one()
    # predicting ~the mean gives scatter ~ spread; < 0.8 asks the network to explain > 1/3 of the variance
    assert scatter < 0.8 * spread, (scatter, spread)
    curve = read_importance(engine, model_id, "all")[LABELS.index("teff")]
    lines = line_list()
    strong = lines["lam"][lines["strength"] >= 0.4]  # Fe I, Balmer, Ca II, Mg, Na, CH, Ca I; not the weak forest
    within = 3.0  # A: ~2 LAMOST resolution elements
    near = np.abs(GRID[:, None] - strong[None, :]).min(axis=1) <= within
    top = np.argsort(curve)[::-1][:20]
    share_top, share_all = near[top].mean(), near.mean()
    # 8.2% of pixels lie near a strong line: 12 or more of the top 20 by chance has p ~ 6e-9
    assert share_top >= 0.6 and share_top >= 3 * share_all, (share_top, share_all, GRID[top])


def test_rerun_replaces_rows_and_unknown_model_is_an_error(explained):
    from catalogdb.explain import explain_model

    engine, model_id, result = explained
    with engine.connect() as conn:
        before = conn.execute(sa.text("select count(*) from feature_importance where model_id = :m"),
                              {"m": model_id}).scalar_one()
    again = explain_model(engine, model_id, stars=12, split="teff:5000", nsamples=2, background=5, figure=False)
    with engine.connect() as conn:
        after = dict(conn.execute(sa.text("select grp, count(*) from feature_importance where model_id = :m "
                                          "group by grp"), {"m": model_id}).all())
    assert sum(after.values()) <= before and after["all"] == len(LABELS) * N_PIXELS and again["figure"] is None
    with pytest.raises(CatalogdbError, match="no model"):
        explain_model(engine, "cnn-missing", stars=5)
