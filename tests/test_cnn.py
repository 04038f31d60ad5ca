"""The CNN: layer sizes, backends, training on the training_set view, the registry, distances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from catalogdb.cnn import LABELS, N_PIXELS
from catalogdb.distance import distance_mode, distance_percentile, extinction_g
from conftest import create_database

ROOT = Path(__file__).resolve().parents[1]
WAVE = np.arange(3925, 8800, dtype=np.float64)
TINY = 0.05  # width_scale of the test networks: 61,606 parameters


def synthetic_stars(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Solar-like dwarfs whose M_G and (BP-RP)_0 follow from Teff, log g, [Fe/H]."""
    rng = np.random.default_rng(seed)
    teff = rng.uniform(4900, 6700, n)
    logg = rng.uniform(np.maximum(3.7, 5.98 - 0.00035 * teff + 0.05), 4.7)
    feh = rng.uniform(-0.9, 0.5, n)
    mg = 4.6 - 0.0016 * (teff - 5800) + 2.5 * (logg - 4.4) + 0.3 * feh
    bprp0 = 0.82 - 0.00033 * (teff - 5800) + 0.05 * feh
    ebprp = rng.uniform(0.0, 0.3, n)
    r = rng.uniform(200, 2000, n)
    return {"teff": teff, "logg": logg, "feh": feh, "mg": mg, "bprp0": bprp0, "ebprp": ebprp, "r": r,
            "ag": 1.8626 * ebprp, "bp_rp": bprp0 + ebprp, "g": mg + 5 * np.log10(r) - 5 + 1.8626 * ebprp,
            "snrg": rng.uniform(20, 200, n), "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-10, 60, n)}


def synthetic_flux(stars: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """Normalised spectra [n, 4875] float32 whose 40 absorption lines respond to Teff, log g and [Fe/H]."""
    rng = np.random.default_rng(1234)  # the same line list for every call
    centers = rng.uniform(3950, 8770, 40)
    coef = rng.normal(0, 1, (4, 40)) * np.array([[0.15], [0.1], [0.05], [0.1]])
    profiles = np.exp(-0.5 * ((WAVE[None, :] - centers[:, None]) / 3.0) ** 2)
    x = np.stack([np.ones_like(stars["teff"]), (stars["teff"] - 5800) / 1000, stars["logg"] - 4.4, stars["feh"]], 1)
    depth = np.clip(0.3 + x @ coef, 0.0, 0.9)
    noise = np.random.default_rng(seed).normal(0, 1, (len(x), N_PIXELS)) / stars["snrg"][:, None]
    return (1.0 - depth @ profiles + noise).astype(np.float32)


def insert_synthetic_training_set(engine: sa.Engine, n: int, seed: int = 0, first_obsid: int = 1_000_000) -> dict:
    """Insert n stars into the base tables so that all of them reach the training_set view."""
    s = synthetic_stars(n, seed)
    flux = synthetic_flux(s, seed)
    obsid = first_obsid + np.arange(n)
    source_id = 4_000_000_000 + obsid
    with engine.begin() as conn:
        run_id = conn.execute(sa.text("insert into run (command, code_version) values ('test', '0') "
                                      "returning run_id")).scalar_one()
        ins = [
            "insert into lamost_star (obsid, ra, dec, snrg, fibermask, teff, logg, feh) values "
             "(:obsid, :ra, :dec, :snrg, 0, :teff, :logg, :feh)",
            "insert into apogee_star (apogee_id, telescope, field, ra, dec, teff, logg, fe_h) values "
             "('2M' || :obsid, 'apo25m', 'f', :ra, :dec, :teff, :logg, :feh)",
            "insert into xmatch_lamost_apogee (obsid, apogee_id, telescope, field, sep_arcsec, rank, best, run_id) "
             "values (:obsid, '2M' || :obsid, 'apo25m', 'f', 0.1, 1, true, :run_id)",
            "insert into gaia_source (source_id, ra, dec, parallax, parallax_error, parallax_over_error, "
             "phot_g_mean_mag, bp_rp, ag_gspphot, ebpminrp_gspphot) values (:source_id, :ra, :dec, 1000 / :r, "
             "50 / :r, 20, :g, :bp_rp, :ag, :ebprp)",
            "insert into gaia_distance (source_id, r_med_geo) values (:source_id, :r)",
            "insert into xmatch_lamost_gaia (obsid, source_id, sep_arcsec, rank, best, run_id) "
             "values (:obsid, :source_id, 0.2, 1, true, :run_id)",
            "insert into spectrum (obsid, flux, flag, snrg, path, checksum, run_id) "
             "values (:obsid, :flux, 0, :snrg, 'synthetic', 'none', :run_id)",
        ]
        params = [{**{k: float(v[i]) for k, v in s.items()}, "obsid": int(obsid[i]), "source_id": int(source_id[i]),
                   "run_id": run_id, "flux": flux[i].astype("<f4").tobytes()} for i in range(n)]
        for sql in ins:
            conn.execute(sa.text(sql), params)
    return {"obsid": obsid, "flux": flux, **s}


@pytest.fixture(scope="module")
def cnn_db(embedded_server, tmp_path_factory):
    from catalogdb.db import admin

    engine = sa.create_engine(create_database(embedded_server, "cnn"))
    admin.init(engine, "compat")
    truth = insert_synthetic_training_set(engine, 400)
    yield engine, truth, tmp_path_factory.mktemp("models")
    engine.dispose()


@pytest.fixture(scope="module")
def trained(cnn_db):
    from catalogdb.cnn.train import train_model

    engine, truth, models = cnn_db
    events = []
    # ~256 training rows per fold at batch 32: 8-9 steps an epoch, 2-3 epochs; far from converged (patience 5)
    result = train_model(engine, max_steps=24, batch_size=32, folds=5, width_scale=TINY, seed=1,
                         progress=events.append, models_dir=models)
    return result, events


def test_full_size_network_has_the_papers_parameter_count():
    from catalogdb.cnn.model import build_model

    model = build_model(1.0)
    assert model.count_params() == 23_849_605
    assert model.get_layer("flatten").output.shape[-1] == 46_080
    assert model.output.shape[-1] == 5


BACKEND_SCRIPT = """
import sys, numpy as np, keras
from catalogdb.cnn.model import build_model, compile_model
folder = sys.argv[1]
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(1, 0.05, (64, 4875, 1)).astype("float32")
y = np.random.default_rng(1).normal(0, 1, (64, 5)).astype("float32")
m = compile_model(build_model(0.05))
h = m.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25)
p = m.predict(x, verbose=0)
assert p.shape == (64, 5) and np.isfinite(p).all() and np.isfinite(h.history["val_loss"]).all()
backend = keras.backend.backend()
if backend == "tensorflow":
    m.save(f"{folder}/tensorflow.keras")
shared = keras.saving.load_model(f"{folder}/tensorflow.keras", compile=False)
np.save(f"{folder}/{backend}.npy", np.asarray(shared.predict_on_batch(x)))
print(backend, m.count_params())
"""
BACKENDS = ["tensorflow", "jax", "torch"]  # all three are in the dev extras: none may be missing


def test_tiny_network_trains_on_every_backend_and_its_weights_predict_the_same(tmp_path):
    for backend in BACKENDS:  # tensorflow first: it saves the weights that the others load
        proc = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                              cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend}, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.split() == [backend, "61606"]
    want = np.load(tmp_path / "tensorflow.npy")
    for backend in BACKENDS[1:]:
        # float32 convolutions and dense products summed in a different order by each backend's kernels:
        # a few ulp of outputs of order 1, far inside 1e-4
        np.testing.assert_allclose(np.load(tmp_path / f"{backend}.npy"), want, rtol=0, atol=1e-4)


def test_distance_mode_and_percentiles_match_the_pdf():
    m, mu, sigma, a_g = 14.0, 4.5, 0.25, 0.3
    d = np.linspace(1.0, 3000.0, 600_000)
    h = m - 5 * np.log10(d) + 5 - a_g
    pdf = 5 / (d * np.log(10)) * np.exp(-0.5 * ((h - mu) / sigma) ** 2)
    # the grid step, 0.005 pc, is 7.3e-6 of the 683 pc mode: argmax finds it to half a step
    assert distance_mode(m, mu, sigma, a_g) == pytest.approx(d[np.argmax(pdf)], rel=1e-5)
    cdf = np.cumsum(pdf) / pdf.sum()
    # a left Riemann sum: its median sits about half a step (3.6e-6) off; 1e-4 is margin
    assert distance_percentile(m, mu, sigma, a_g, 50) == pytest.approx(np.interp(0.5, cdf, d), rel=1e-4)
    # d0 exp(+-s) against 10**((... +- sigma) / 5): equal by algebra, float64 rounding only
    assert distance_percentile(m, mu, sigma, a_g, 84) == pytest.approx(10 ** ((m - mu - a_g + 5 + sigma) / 5))
    assert distance_percentile(m, mu, sigma, a_g, 16) == pytest.approx(10 ** ((m - mu - a_g + 5 - sigma) / 5))
    assert extinction_g(1.2, 0.8) == pytest.approx(1.8626 * 0.4)
    # sigma_M = 0: the mode is the plain distance modulus
    assert distance_mode(10.0, 0.0, 0.0, 0.0) == pytest.approx(1000.0)


def test_training_data_round_trips_flux_labels_and_split(cnn_db):
    from catalogdb.cnn.data import load_training_data

    engine, truth, _ = cnn_db
    data = load_training_data(engine)
    assert len(data) == 400
    order = np.searchsorted(truth["obsid"], data.obsid)
    np.testing.assert_array_equal(data.flux, truth["flux"][order])
    np.testing.assert_allclose(data.labels[:, 0], truth["teff"][order], rtol=1e-6)  # teff is REAL
    # M_G is computed in SQL from REAL G, r_med_geo and A_G: float32 rounding below 1e-6 mag
    np.testing.assert_allclose(data.labels[:, 3], truth["mg"][order], atol=1e-4)
    with engine.connect() as conn:
        view = dict(conn.execute(sa.text("select obsid, coalesce(fold, -1) from training_set")).all())
    assert [view[int(o)] for o in data.obsid] == data.fold.tolist()
    assert data.is_test.tolist() == [view[int(o)] == -1 for o in data.obsid]
    assert 40 < data.is_test.sum() < 130  # about 20% test (md5 split): 80 +- 8 of 400, bounds >= 5 sigma away


def test_training_registers_a_model_with_finite_metrics(cnn_db, trained):
    from catalogdb.cnn.registry import list_models

    engine, truth, models = cnn_db
    result, events = trained
    row = next(r for r in list_models(engine) if r["model_id"] == result["model_id"])
    assert row["training_rows"] == 400
    assert len(row["training_checksum"]) == 64 and row["training_checksum"] == result["training_checksum"]
    assert row["config"]["folds"] == 5 and row["config"]["width_scale"] == TINY
    metrics = row["metrics"]
    with engine.connect() as conn:
        n_test = conn.execute(sa.text("select count(*) from training_set where split = 'test'")).scalar_one()
        run = conn.execute(sa.text("select command, status, row_counts from run where run_id = :r"),
                           {"r": row["run_id"]}).one()
    assert metrics["n_test"] == n_test and metrics["n_reference"] == 400 - n_test
    for name in LABELS:
        for key in ("bias", "scatter", "mse", "mean_spread"):
            assert np.isfinite(metrics["labels"][name][key]), (name, key)
        m = metrics["labels"][name]
        # mean(r^2) = mean(r)^2 + var(r) to float64 rounding (jsonb keeps the repr): 1e-6 is loose
        assert m["mse"] == pytest.approx(m["bias"] ** 2 + m["scatter"] ** 2, rel=1e-6)
        assert m["mean_spread"] > 0  # five different networks disagree somewhat
    assert row["sigma_mg"] == pytest.approx(metrics["labels"]["mg"]["scatter"])
    assert metrics["distance"]["n"] == n_test
    assert np.isfinite([metrics["distance"][k] for k in ("frac_median", "frac_std", "scatter_pc")]).all()
    assert [n["network"] for n in metrics["networks"]] == [0, 1, 2, 3, 4]
    assert run.command == "train" and run.status == "done" and run.row_counts["networks"] == 5
    epochs = [e for e in events if e["stage"] == "epoch"]
    assert len(epochs) == sum(n["epochs_run"] for n in metrics["networks"])
    folder = Path(row["path"])
    assert folder.parent == models
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["fold0.keras", "fold1.keras", "fold2.keras", "fold3.keras", "fold4.keras", "scaler.json", "config.json",
         "test_predictions.npz", "fig5.png"])
    assert (folder / "fig5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scaler = json.loads((folder / "scaler.json").read_text())
    ref = ~np.isin(truth["obsid"], np.load(folder / "test_predictions.npz")["obsid"])
    # teff went through REAL (6e-8 relative per value) before the scaler averaged it
    assert scaler["mean"][0] == pytest.approx(truth["teff"][ref].mean(), rel=1e-5)  # scaled on reference rows only


def test_split_is_respected(cnn_db, trained):
    from catalogdb.cnn.data import load_training_data
    from catalogdb.cnn.train import fold_plan

    engine, _, _ = cnn_db
    result, _ = trained
    data = load_training_data(engine)
    test_obsid = set(data.obsid[data.is_test].tolist())
    plan = fold_plan(data, 5)
    for k, (tr, va) in enumerate(plan):
        assert not test_obsid & set(data.obsid[tr].tolist()) and not test_obsid & set(data.obsid[va].tolist())
        assert (data.fold[va] == k).all() and (data.fold[tr] != k).all()
        assert len(tr) + len(va) == (~data.is_test).sum()
    saved = np.load(Path(result["path"]) / "test_predictions.npz")
    assert set(saved["obsid"].tolist()) == test_obsid
    quick_tr, quick_va = fold_plan(data, 1, seed=3)[0]
    assert not set(quick_tr) & set(quick_va) and len(quick_va) == round(0.1 * (~data.is_test).sum())
    assert not test_obsid & set(data.obsid[np.concatenate([quick_tr, quick_va])].tolist())


def test_reloaded_model_predicts_identically(cnn_db, trained):
    from catalogdb.cnn.registry import load_model

    engine, truth, _ = cnn_db
    result, _ = trained
    saved = np.load(Path(result["path"]) / "test_predictions.npz")
    flux = truth["flux"][np.searchsorted(truth["obsid"], saved["obsid"])]
    model = load_model(engine, result["model_id"])
    assert model.model_id == result["model_id"] and model.sigma_mg == pytest.approx(result["sigma_mg"])
    mean, spread = model.predict(flux)
    assert mean.shape == spread.shape == (len(flux), 5)
    # the same float32 weights and inputs: kernels may round a few ulp of z (~1e-7) apart, times the label's
    # std; atol for labels near 0. The spread, a std of 5 close values, keeps fewer digits: rtol 1e-5
    np.testing.assert_allclose(mean, saved["pred"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(spread, saved["spread"], rtol=1e-5, atol=1e-6)
    assert (spread > 0).all()
    per_fold = model.predict_folds(flux[:7])
    assert per_fold.shape == (5, 7, 5)
    # a batch of 7 instead of all test rows: other kernel blocking, the same ulp-level rounding as above
    np.testing.assert_allclose(per_fold.mean(0), mean[:7], rtol=1e-6, atol=1e-6)
    with pytest.raises(Exception, match="4875"):
        model.predict(flux[:, :100])


def test_quick_single_network_and_latest_model(cnn_db, trained):
    from catalogdb.cnn.registry import list_models, load_model
    from catalogdb.cnn.train import train_model

    engine, truth, models = cnn_db
    result = train_model(engine, max_steps=10, batch_size=64, folds=1, width_scale=TINY, seed=2, models_dir=models)
    assert result["config"]["validation"] == "random 10% of the reference set"
    assert list_models(engine)[0]["model_id"] == result["model_id"]
    latest = load_model(engine)  # None: the newest
    assert latest.model_id == result["model_id"] and len(latest.networks) == 1
    _, spread = latest.predict(truth["flux"][:5])
    assert (spread == 0).all()
    assert result["training_checksum"] == trained[0]["training_checksum"]  # same rows, same checksum


def test_ctrl_c_keeps_the_best_networks_so_far(cnn_db):
    from catalogdb.cnn.registry import list_models
    from catalogdb.cnn.train import train_model

    engine, _, models = cnn_db

    def interrupt(event):
        if event["stage"] == "epoch" and event["fold"] == 1 and event["epoch"] == 1:
            raise KeyboardInterrupt

    result = train_model(engine, max_steps=8, batch_size=64, folds=5, width_scale=TINY, progress=interrupt,
                         models_dir=models)
    assert result["interrupted"] is True
    row = next(r for r in list_models(engine) if r["model_id"] == result["model_id"])
    assert [n["network"] for n in row["metrics"]["networks"]] == [0, 1]
    assert row["metrics"]["networks"][1]["epochs_run"] == 1 and row["metrics"]["interrupted"] is True
    assert sorted(p.name for p in Path(row["path"]).glob("*.keras")) == ["fold0.keras", "fold1.keras"]
    with engine.connect() as conn:
        run = conn.execute(sa.text("select status, row_counts from run where run_id = :r"), {"r": row["run_id"]}).one()
    assert run.status == "done" and run.row_counts["interrupted"] is True


def test_a_run_cut_off_by_its_step_budget_is_not_converged_in_the_registry_and_models(cnn_db, trained):
    from typer.testing import CliRunner

    from catalogdb.cli import app

    engine, _, _ = cnn_db
    result, _ = trained
    networks = result["metrics"]["networks"]
    assert result["metrics"]["converged"] is False
    for n in networks:  # each stopped because one more epoch would overrun the 24-step budget
        per_epoch = -(-n["train_rows"] // 32)
        assert not n["converged"] and n["max_steps"] == 24 and 24 - per_epoch < n["steps"] <= 24
        assert n["steps"] == n["epochs_run"] * per_epoch
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select metrics from cnn_model where model_id = :m"),
                              {"m": result["model_id"]}).scalar_one()
    assert stored["converged"] is False and [n["converged"] for n in stored["networks"]] == [False] * 5
    shown = CliRunner().invoke(app, ["models"], env={"CATALOGDB_URL": engine.url.render_as_string(False),
                                                     "COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    (line,) = [line for line in shown.output.splitlines() if result["model_id"] in line]
    assert f"NO (0/5, {sum(n['steps'] for n in networks)} steps)" in line


def test_a_tiny_run_converges_and_reports_steps_and_response(cnn_db):
    from catalogdb.cnn.train import SNR_BINS, train_model

    engine, _, models = cnn_db
    # patience 2 and one halving: converges in tens of epochs on the 400 synthetic stars (patience 1 stops
    # on the first noisy epoch, before Teff is learnt)
    result = train_model(engine, max_steps=20_000, batch_size=32, folds=1, width_scale=TINY, seed=4, patience=2,
                         reductions=1, models_dir=models)
    (net,) = result["metrics"]["networks"]
    assert net["converged"] is True and result["metrics"]["converged"] is True
    assert net["lr_reductions"] == 1 and net["final_learning_rate"] == pytest.approx(0.5 * 1e-3, rel=1e-6)  # float32
    assert net["steps"] == net["epochs_run"] * -(-net["train_rows"] // 32) < 20_000  # steps = epochs x batches
    assert net["epochs_run"] >= net["best_epoch"] + 2  # stopped on a plateau of `patience` epochs
    saved = np.load(Path(result["path"]) / "test_predictions.npz")
    for j, name in enumerate(LABELS):
        m = result["metrics"]["labels"][name]
        slope = np.polyfit(saved["label"][:, j], saved["pred"][:, j], 1)[0]
        assert m["response"] == pytest.approx(slope, rel=1e-9)  # least squares either way, float64
        assert [b["snrg"] for b in m["by_snrg"]] == ["10-20", "20-40", "40-80", ">80"] and len(SNR_BINS) == 4
        assert sum(b["n"] for b in m["by_snrg"]) == result["metrics"]["n_test"]  # every test star has S/N 20-200
    assert result["metrics"]["labels"]["teff"]["response"] > 0.5  # Teff is the easiest label: learnt, not noise


def test_missing_model_is_a_clear_error(cnn_db):
    from catalogdb.cnn.registry import load_model
    from catalogdb.errors import CatalogdbError

    engine, _, _ = cnn_db
    with pytest.raises(CatalogdbError, match="no model 'nope'"):
        load_model(engine, "nope")
