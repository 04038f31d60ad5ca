"""`catalogdb models import`: a SavedModel laid out like the authors' Zenodo files, converted, registered, used."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from test_cnn import TINY, insert_synthetic_training_set

from catalogdb.cnn import LABELS, N_PIXELS
from conftest import FIXTURES, create_database

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_STARS = 200  # ~40 test rows: enough for the tiny trained model beside the imported one


def authors_network(width_scale: float, n_out: int = 5, slope: float = 0.3):
    """The paper's network as the authors built it in tf.keras 2 (tf_keras), at a width scale.

    Their 2_cnn_model.ipynb (SolarDis) prints a Sequential model of conv1d, max_pooling1d, ..., flatten,
    dense, dense_1, dense_2 and no activation layers: the Leaky ReLUs sit inside Conv1D and Dense.
    """
    import tf_keras

    from catalogdb.cnn.model import CONV_FILTERS, DENSE_UNITS, scaled

    net = tf_keras.Sequential()
    net.add(tf_keras.Input(shape=(N_PIXELS, 1)))
    for filters in CONV_FILTERS:
        # tf.keras 2's LeakyReLU() default slope is 0.3, as catalogdb's LEAKY_SLOPE
        net.add(tf_keras.layers.Conv1D(scaled(filters, width_scale), 3, padding="same",
                                       activation=tf_keras.layers.LeakyReLU(alpha=slope)))
        net.add(tf_keras.layers.MaxPooling1D(3))
    net.add(tf_keras.layers.Flatten())
    for units in DENSE_UNITS:
        net.add(tf_keras.layers.Dense(scaled(units, width_scale), activation=tf_keras.layers.LeakyReLU(alpha=slope)))
    net.add(tf_keras.layers.Dense(n_out))
    return net


def write_authors_files(folder: Path, n_out: int = 5, n_scaler_labels: int = 5, seed: int = 0,
                        slope: float = 0.3) -> Path:
    """folder/model/cnn_model (SavedModel, after one training epoch) and folder/model/std_scaler.bin (joblib)."""
    import joblib
    import tf_keras
    from sklearn.preprocessing import StandardScaler

    tf_keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.column_stack([rng.normal(5800, 500, 64), rng.normal(4.3, 0.3, 64), rng.normal(-0.2, 0.3, 64),
                              rng.normal(4.5, 0.8, 64), rng.normal(0.8, 0.1, 64)])[:, :n_scaler_labels]
    scaler = StandardScaler().fit(labels)
    net = authors_network(TINY, n_out, slope)
    net.compile(optimizer="adam", loss="mse")
    # one epoch: the SavedModel then also holds optimizer slots, as a model saved after training does
    flux = rng.normal(1.0, 0.05, (16, N_PIXELS, 1)).astype(np.float32)
    net.fit(flux, rng.normal(0, 1, (16, n_out)).astype(np.float32), epochs=1, batch_size=8, verbose=0)
    (folder / "model").mkdir(parents=True)
    net.save(str(folder / "model" / "cnn_model"))  # no .keras/.h5 suffix: tf.keras 2 writes a SavedModel
    joblib.dump(scaler, folder / "model" / "std_scaler.bin")
    return folder


@pytest.fixture(scope="module")
def authors_dir(tmp_path_factory) -> Path:
    return write_authors_files(tmp_path_factory.mktemp("zenodo"))


@pytest.fixture(scope="module")
def db(embedded_server, tmp_path_factory):
    """A fresh database with synthetic spectra and a tiny trained model: (engine, url, truth, models_dir, trained)."""
    from catalogdb.cnn.train import train_model
    from catalogdb.db import admin

    url = create_database(embedded_server, "authors")
    engine = sa.create_engine(url)
    admin.init(engine, "compat")
    truth = insert_synthetic_training_set(engine, SYNTHETIC_STARS)
    models = tmp_path_factory.mktemp("models")
    trained = train_model(engine, max_steps=10, batch_size=64, folds=1, width_scale=TINY, models_dir=models)
    yield engine, url, truth, models, trained
    engine.dispose()


@pytest.fixture(scope="module")
def imported(db, authors_dir):
    from catalogdb.cnn.authors import import_model

    engine, _, _, models, _ = db
    return import_model(engine, authors_dir, models_dir=models)


def fixture_flux() -> np.ndarray:
    """The 11 real LAMOST fixture spectra, preprocessed as ingest does: [11, 4875] float32."""
    from catalogdb.spectra import process_file

    done = [process_file(p) for p in sorted((FIXTURES / "lamost_lrs").glob("*.fits"))]
    assert len(done) == 11 and all(d.flux is not None for d in done), [d.reason for d in done]
    return np.stack([d.flux for d in done])


def test_imported_model_predicts_real_spectra_as_the_saved_model_does(db, authors_dir, imported):
    import joblib
    import tf_keras

    from catalogdb.cnn.registry import load_model

    engine, _, _, _, _ = db
    flux = fixture_flux()
    model = load_model(engine, imported["model_id"])
    assert len(model.networks) == 1 and model.sigma_mg == pytest.approx(0.2546)
    mean, spread = model.predict(flux)

    saved = tf_keras.models.load_model(str(authors_dir / "model" / "cnn_model"))
    scaler = joblib.load(authors_dir / "model" / "std_scaler.bin")
    want = scaler.inverse_transform(saved.predict(flux[:, :, None], verbose=0))
    assert np.ptp(want, axis=0).min() > 0  # the spectra give different labels: the comparison can fail
    # The same float32 weights and layer stack in Keras 3 and tf.keras 2: at most a few ulp of the
    # z-scores (~1e-7, other batch sizes and kernels), times the label's std (500 K for Teff), is far
    # below 1e-5 relative; atol for labels near zero. A wrong weight, order or scaler moves them by ~1.
    np.testing.assert_allclose(mean, want, rtol=1e-5, atol=1e-5)
    assert (spread == 0).all()  # one network: no fold spread


def test_import_records_provenance_and_a_second_import_replaces_it(db, authors_dir, imported):
    from catalogdb.cnn.authors import import_model
    from catalogdb.cnn.registry import list_models

    engine, _, _, models, _ = db
    row = next(r for r in list_models(engine) if r["model_id"] == imported["model_id"])
    config = row["config"]
    model_dir = authors_dir / "model"
    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    assert {"cnn_model/saved_model.pb", "cnn_model/variables/variables.index", "std_scaler.bin"} <= set(files)
    assert any(f.startswith("cnn_model/variables/variables.data-") for f in files)
    assert config["checksums"] == {f: hashlib.sha256((model_dir / f).read_bytes()).hexdigest() for f in files}
    assert config["doi"] == "10.5281/zenodo.13748129" and config["published sigma_M"] == 0.2546
    assert config["source"] == str(authors_dir.resolve())
    assert config["label_map"] == dict(zip(("teff", "logg", "feh", "mg_geo", "bp_rp_0"), LABELS, strict=True))
    assert config["parameters"] == 61_606 and config["probe_max_abs_diff_z"] <= 1e-4
    assert row["training_rows"] == 18_573 and row["sigma_mg"] == 0.2546 and "imported" in row["metrics"]
    assert Path(row["path"]).parent == models
    assert sorted(p.name for p in Path(row["path"]).iterdir()) == ["cnn_model.keras", "config.json", "scaler.json"]
    with engine.connect() as conn:
        run = conn.execute(sa.text("select command, status, parameters, inputs from run where run_id = :r"),
                           {"r": row["run_id"]}).one()
    assert run.command == "models import" and run.status == "done" and run.parameters["doi"] == config["doi"]
    assert sorted(i["sha256"] for i in run.inputs) == sorted(config["checksums"].values())

    # DIR may be model/ itself; the same files give the same model, replaced rather than duplicated
    again = import_model(engine, model_dir, models_dir=models)
    assert again["model_id"] == imported["model_id"]
    assert [r["model_id"] for r in list_models(engine)].count(imported["model_id"]) == 1
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no partial or old folders left


def test_scaler_json_gives_the_same_scaler(db, authors_dir, tmp_path, imported):
    import joblib

    from catalogdb.cnn.authors import import_model
    from catalogdb.cnn.registry import load_model

    engine, _, _, models, _ = db
    sk = joblib.load(authors_dir / "model" / "std_scaler.bin")
    path = tmp_path / "scaler.json"
    path.write_text(json.dumps({"mean": sk.mean_.tolist(), "scale": sk.scale_.tolist()}))
    (tmp_path / "copy").mkdir()
    shutil.copytree(authors_dir / "model" / "cnn_model", tmp_path / "copy" / "cnn_model")  # no std_scaler.bin
    result = import_model(engine, tmp_path / "copy", scaler_json=path, sigma_mg=0.3, models_dir=models)
    assert result["model_id"] != imported["model_id"] and result["sigma_mg"] == 0.3
    model = load_model(engine, result["model_id"])
    np.testing.assert_array_equal(model.scaler.mean, sk.mean_)
    np.testing.assert_array_equal(model.scaler.std, sk.scale_)
    assert result["config"]["scaler_format"] == "json" and result["config"]["checksums"][str(path.resolve())]


def test_predict_writes_the_imported_models_labels_and_distances(db, imported):
    from catalogdb.cnn.predict import predict
    from catalogdb.cnn.registry import load_model

    engine, _, truth, _, _ = db
    result = predict(engine, imported["model_id"], all_spectra=True)
    assert result["predicted"] == SYNTHETIC_STARS
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select obsid, cnn_teff, cnn_logg, cnn_feh, cnn_mg, cnn_bprp, distance_p50, "
                                    "distance_p84 from cnn_prediction where model_id = :m order by obsid"),
                            {"m": imported["model_id"]}).all()
    got = np.array([r[1:] for r in rows], dtype=np.float64)
    assert [r.obsid for r in rows] == truth["obsid"].tolist()
    mean, _ = load_model(engine, imported["model_id"]).predict(truth["flux"])
    np.testing.assert_allclose(got[:, :5], mean, rtol=1e-6, atol=1e-6)  # float4 columns: 6e-8 relative
    ok = np.isfinite(got[:, 5]) & np.isfinite(got[:, 6])
    assert ok.sum() > SYNTHETIC_STARS // 2
    # p84 / p50 = 10^(sigma_M / 5): the distances used the published sigma_M, 0.2546 (float4: 1e-6)
    np.testing.assert_allclose(got[ok, 6] / got[ok, 5], 10 ** (0.2546 / 5), rtol=1e-6)


def test_cli_imports_and_models_lists_it_beside_a_trained_model(db, authors_dir, tmp_path):
    from typer.testing import CliRunner

    from catalogdb.cli import app
    from catalogdb.cnn.registry import list_models

    engine, url, _, _, trained = db
    env = {"CATALOGDB_URL": url, "CATALOGDB_HOME": str(tmp_path / "home"), "COLUMNS": "250"}
    done = CliRunner().invoke(app, ["models", "import", str(authors_dir), "--sigma-mg", "0.25"], env=env)
    assert done.exit_code == 0, done.output
    row = next(r for r in list_models(engine) if r["sigma_mg"] == 0.25)
    assert f"model {row['model_id']} registered" in done.output
    assert Path(row["path"]).parent == (tmp_path / "home" / "models").resolve()

    shown = CliRunner().invoke(app, ["models"], env=env)
    assert shown.exit_code == 0, shown.output
    (imported_line,) = [line for line in shown.output.splitlines() if row["model_id"] in line]
    assert "n/a (imported)" in imported_line and "18,573" in imported_line
    (trained_line,) = [line for line in shown.output.splitlines() if trained["model_id"] in line]
    (net,) = trained["metrics"]["networks"]
    assert f"NO (0/1, {net['steps']} steps)" in trained_line  # a 10-step budget: far too few to converge


@pytest.fixture(scope="module")
def broken(authors_dir, tmp_path_factory) -> dict[str, Path]:
    """Malformed copies of the authors' folder, by what is wrong."""
    import joblib
    from sklearn.preprocessing import StandardScaler

    base = tmp_path_factory.mktemp("broken")
    out = {}
    for name in ("no_pb", "no_scaler", "four_labels"):
        shutil.copytree(authors_dir, base / name)
        out[name] = base / name
    (out["no_pb"] / "model" / "cnn_model" / "saved_model.pb").unlink()
    (out["no_scaler"] / "model" / "std_scaler.bin").unlink()
    joblib.dump(StandardScaler().fit(np.random.default_rng(0).normal(size=(20, 4))),
                out["four_labels"] / "model" / "std_scaler.bin")
    out["width4"] = write_authors_files(base / "width4", n_out=4)
    out["slope"] = write_authors_files(base / "slope", slope=0.1)  # right shapes, other activation
    return out


@pytest.mark.parametrize(("case", "message"), [
    ("no_pb", r"cnn_model/saved_model\.pb not found: expected the authors' TensorFlow SavedModel"),
    ("no_scaler", r"model/std_scaler\.bin not found: expected the authors' label scaler"),
    ("four_labels", r"std_scaler\.bin: the scaler has 4 means and 4 scales, expected 5"),
    ("width4", r"saved_model\.pb: serving_default outputs \{'dense_\d+': 4\} values per spectrum, expected one "
               r"output of 5"),
    ("slope", r"saved_model\.pb: catalogdb's network with these weights differs from the SavedModel by"),
])
def test_malformed_folders_are_clear_errors_and_leave_nothing(db, broken, tmp_path, case, message):
    from catalogdb.cnn.authors import import_model
    from catalogdb.errors import CatalogdbError

    engine, _, _, _, _ = db
    with engine.connect() as conn:
        before = conn.execute(sa.text("select count(*) from cnn_model")).scalar_one()
    with pytest.raises(CatalogdbError, match=message):
        import_model(engine, broken[case], models_dir=tmp_path / "models")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from cnn_model")).scalar_one() == before
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_bad_scaler_json_is_a_clear_error(db, authors_dir, tmp_path):
    from catalogdb.cnn.authors import import_model
    from catalogdb.errors import CatalogdbError

    engine, _, _, _, _ = db
    bad = tmp_path / "scaler.json"
    bad.write_text(json.dumps({"mean": [1, 2, 3, 4, 5]}))
    with pytest.raises(CatalogdbError, match=r"scaler\.json: expected JSON \{\"mean\": \[5 numbers\]"):
        import_model(engine, authors_dir, scaler_json=bad, models_dir=tmp_path / "models")
    bad.write_text(json.dumps({"mean": [1, 2, 3], "scale": [1, 1, 1]}))
    with pytest.raises(CatalogdbError, match="3 means and 3 scales, expected 5"):
        import_model(engine, authors_dir, scaler_json=bad, models_dir=tmp_path / "models")


def test_cli_shows_a_malformed_folder_as_one_line(db, broken):
    _, url, _, _, _ = db
    proc = subprocess.run([sys.executable, "-m", "catalogdb.cli", "models", "import", str(broken["no_pb"])],
                          env={**os.environ, "CATALOGDB_URL": url, "COLUMNS": "400"}, capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2  # BadInput's exit code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert str(broken["no_pb"] / "model" / "cnn_model" / "saved_model.pb") in lines[0]
