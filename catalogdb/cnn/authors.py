"""`catalogdb models import`: the authors' published network (Zenodo) as a registered model.

The authors' files (doi 10.5281/zenodo.13748129, linked from the SolarDis repository), unpacked by
hand into DIR:
- model/cnn_model/: a TensorFlow SavedModel written by tf.keras 2 (saved_model.pb, variables/),
  input [n, 4875, 1] normalised flux, output [n, 5] z-scored labels;
- model/std_scaler.bin: the scikit-learn StandardScaler of those labels, saved by joblib;
- label order teff, logg, feh, mg_geo, bp_rp_0; sigma_M = 0.2546 (test-set scatter of M_G).

The SavedModel is read through Keras 3's TFSMLayer and its weights are copied into
catalogdb.cnn.model.build_model, which is saved as an ordinary .keras network in a model folder:
- the folder then loads with registry.load_folder like a trained model, on every Keras backend
  (TFSMLayer runs on TensorFlow only, and a .keras file holding a TFSMLayer would not load in
  Keras' safe mode), and explain's gradients see the same layers as for a trained model;
- tf-keras could load the SavedModel as a model, but it depends on the `tensorflow` wheel and would
  install it over `tensorflow-cpu`, so it stays a test-only dependency (tests build such a
  SavedModel with it).
The copy is checked before anything is written: the converted network and the SavedModel's own
serving function must give the same z-scores on probe spectra. Measured on a tf.keras 2 SavedModel of
the paper's network (2 CPU cores, batches of 64): the converted network gives the SavedModel's outputs
bit for bit and predicts at least as fast as a TFSMLayer wrapped in a model (348 against 324 spectra/s
at full width, 12,700 against 7,400 at width 0.05).

joblib files are pickles: loading one runs code chosen by whoever wrote it. Only import files you
trust, or give the scaler as JSON (--scaler-json).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from catalogdb import __version__, paper, runs
from catalogdb.cnn import LABELS, N_PIXELS
from catalogdb.cnn.registry import CONFIG_FILE, SCALER_FILE, LabelScaler, register
from catalogdb.config import settings
from catalogdb.errors import BadInput, CatalogdbError

# cnn_model.training_checksum is NOT NULL; the authors' training rows are not here to checksum.
TRAINING_CHECKSUM = "none: imported, trained by the authors"
SOURCE_LABELS = ("teff", "logg", "feh", "mg_geo", "bp_rp_0")  # the authors' column order
NETWORK_FILE = "cnn_model.keras"
# Random spectra around the continuum: they exercise every weight, which is all the check needs.
PROBE_SPECTRA = 8
# float32 sums of up to 46,080 products in two kernels' orders: ulp-level differences of z-scores
# of order 1 are ~1e-6; a wrong weight, slope or padding moves them by far more than 1e-4.
PROBE_ATOL = 1e-4


@dataclass
class AuthorsFiles:
    """Where the published files of one import are."""

    folder: Path  # the `model/` folder
    saved_model: Path  # model/cnn_model
    scaler: Path  # model/std_scaler.bin, or the --scaler-json file
    scaler_is_json: bool


def locate(folder: Path, scaler_json: Path | None = None) -> AuthorsFiles:
    """The SavedModel and scaler in DIR (the folder holding `model/`, or `model/` itself)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder (expected the authors' files: model/cnn_model/, model/std_scaler.bin)")
    root = folder / "model" if (folder / "model").is_dir() else folder
    saved_model = root / "cnn_model"
    for required, what in ((saved_model / "saved_model.pb", "the authors' TensorFlow SavedModel"),
                           (saved_model / "variables" / "variables.index", "the SavedModel's weights")):
        if not required.is_file():
            raise BadInput(f"{required} not found: expected {what} (model/cnn_model/saved_model.pb and "
                           f"model/cnn_model/variables/ of doi:{paper.DOI_MODEL}) in {folder}")
    if scaler_json is not None:
        if not Path(scaler_json).is_file():
            raise BadInput(f"{scaler_json} not found: expected the label scaler as JSON "
                           '({"mean": [5 numbers], "scale": [5 numbers]})')
        return AuthorsFiles(root, saved_model, Path(scaler_json), True)
    scaler = root / "std_scaler.bin"
    if not scaler.is_file():
        raise BadInput(f"{scaler} not found: expected the authors' label scaler (a joblib-saved scikit-learn "
                       'StandardScaler), or give --scaler-json FILE with {"mean": [5 numbers], "scale": [5 numbers]}')
    return AuthorsFiles(root, saved_model, scaler, False)


def _scaler_values(path: Path, mean, scale) -> LabelScaler:
    try:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{path}: the scaler's mean and scale must be lists of numbers ({exc})") from None
    n = len(LABELS)
    if len(mean) != n or len(scale) != n:
        raise BadInput(f"{path}: the scaler has {len(mean)} means and {len(scale)} scales, expected {n} "
                       f"({', '.join(SOURCE_LABELS)})")
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale != 0).all()):
        raise BadInput(f"{path}: the scaler's mean and scale must be finite and the scales non-zero")
    return LabelScaler(mean, scale)


def read_scaler(files: AuthorsFiles) -> LabelScaler:
    """The label scaler, in LABELS order (the authors' order, renamed)."""
    if files.scaler_is_json:
        try:
            data = json.loads(files.scaler.read_text())
            return _scaler_values(files.scaler, data["mean"], data["scale"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise BadInput(f"{files.scaler}: expected JSON {{\"mean\": [5 numbers], \"scale\": [5 numbers]}} "
                           f"({type(exc).__name__}: {exc})") from None
    import joblib

    try:
        scaler = joblib.load(files.scaler)  # a pickle: see the module docstring
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise BadInput(f"{files.scaler}: cannot be read as a joblib-saved scikit-learn StandardScaler "
                       f"({type(exc).__name__}: {exc}); give --scaler-json instead") from None
    mean, scale = getattr(scaler, "mean_", None), getattr(scaler, "scale_", None)
    if mean is None and scale is None:
        raise BadInput(f"{files.scaler}: holds a {type(scaler).__name__}, expected a fitted scikit-learn "
                       "StandardScaler (mean_, scale_)")
    n = len(np.atleast_1d(mean if mean is not None else scale))
    # inverse_transform skips the mean with with_mean=False and the scale with with_std=False
    # (scale_ is then None, and mean_ is None when both are off)
    mean = mean if getattr(scaler, "with_mean", True) else np.zeros(n)
    scale = scale if getattr(scaler, "with_std", True) else np.ones(n)
    return _scaler_values(files.scaler, mean, scale)


def _endpoint(saved_model: Path):
    """The SavedModel's serving_default function as a Keras 3 layer."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise CatalogdbError(f"reading a TensorFlow SavedModel needs the TensorFlow backend (this run uses "
                             f"{keras.backend.backend()}): import with KERAS_BACKEND=tensorflow; the imported "
                             "network then runs on every backend")
    try:
        return keras.layers.TFSMLayer(str(saved_model), call_endpoint="serving_default")
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many kinds for an unreadable SavedModel
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{saved_model / 'saved_model.pb'}: not a readable TensorFlow SavedModel with a "
                       f"serving_default signature ({first})") from None


def _check_signature(layer, saved_model: Path) -> str:
    """The name of the signature's one output, after checking its input and output shapes."""
    pb = saved_model / "saved_model.pb"
    fn = layer.call_endpoint_fn
    args, kwargs = fn.structured_input_signature
    inputs = [*args, *kwargs.values()]
    shapes = [tuple(spec.shape.as_list()) for spec in inputs if hasattr(spec, "shape")]
    if len(inputs) != 1 or shapes != [(None, N_PIXELS, 1)]:
        raise BadInput(f"{pb}: serving_default takes {shapes or inputs}, expected one input of shape "
                       f"[n, {N_PIXELS}, 1] (normalised flux)")
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    widths = {name: spec.shape.as_list()[-1] for name, spec in outputs.items()}
    if len(widths) != 1 or list(widths.values()) != [len(LABELS)]:
        raise BadInput(f"{pb}: serving_default outputs {widths} values per spectrum, expected one output of "
                       f"{len(LABELS)} ({', '.join(SOURCE_LABELS)})")
    return next(iter(outputs))


def _layers(layer, pb: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """(kernel, bias) of the conv layers and of the dense layers, each in input-to-output order."""
    parts: dict[str, dict[str, np.ndarray]] = {}
    for weight in layer.weights:
        name = weight.name.split(":")[0]
        for kind in ("kernel", "bias"):
            if name.endswith(kind):
                parts.setdefault(name[: -len(kind)], {})[kind] = np.asarray(weight.numpy())
                break
        else:
            raise BadInput(f"{pb}: unexpected weight {weight.name} {tuple(weight.shape)}: the paper's network "
                           "has only Conv1D and Dense kernels and biases")
    pairs = [(p["kernel"], p["bias"]) for p in parts.values() if set(p) == {"kernel", "bias"}]
    if len(pairs) != len(parts):
        raise BadInput(f"{pb}: a layer without both kernel and bias: not the paper's network")

    def chain(kernels: list, first_input: int) -> list | None:
        order, size, left = [], first_input, list(kernels)
        while left:
            nxt = [k for k in left if k[0].shape[-2] == size]
            if len(nxt) != 1:
                return None
            order.append(nxt[0])
            left = [k for k in left if k is not nxt[0]]
            size = nxt[0][0].shape[-1]
        return order

    convs = chain([p for p in pairs if p[0].ndim == 3], 1)
    denses = [p for p in pairs if p[0].ndim == 2]
    flat = None
    if convs and len(convs) == 3:
        flat = N_PIXELS // 3 // 3 // 3 * convs[-1][0].shape[-1]
    denses = chain(denses, flat) if flat else None
    if not convs or not denses or len(convs) != 3 or len(denses) != 3:
        found = ", ".join(str(tuple(k.shape)) for k, _ in pairs)
        raise BadInput(f"{pb}: kernels {found}: expected the paper's network (3 Conv1D, kernel 3, then Dense "
                       "512, 256, 5 after Flatten)")
    return convs, denses


def _width_scale(widths: list[int]) -> float | None:
    """A width_scale for which build_model has these widths (the middle of the interval that rounds to them)."""
    from catalogdb.cnn.model import CONV_FILTERS, DENSE_UNITS

    bases = [*CONV_FILTERS, *DENSE_UNITS]
    low = max((w - 0.5) / b for w, b in zip(widths, bases, strict=True))
    high = min((w + 0.5) / b for w, b in zip(widths, bases, strict=True))
    return (low + high) / 2 if low < high else None


def convert(saved_model: Path) -> tuple[object, dict]:
    """The SavedModel's network as catalogdb's build_model with its weights, checked on probe spectra."""
    from catalogdb.cnn.model import CONV_FILTERS, DENSE_UNITS, build_model

    pb = saved_model / "saved_model.pb"
    layer = _endpoint(saved_model)
    output = _check_signature(layer, saved_model)
    convs, denses = _layers(layer, pb)
    widths = [k.shape[-1] for k, _ in convs] + [k.shape[-1] for k, _ in denses[:2]]
    scale = _width_scale(widths)
    if scale is None or any(k.shape[0] != 3 for k, _ in convs):
        raise BadInput(f"{pb}: layer widths {widths} (kernel sizes {[k.shape[0] for k, _ in convs]}) are not the "
                       f"paper's {[*CONV_FILTERS, *DENSE_UNITS]} at any one width scale with kernel size 3")
    network = build_model(scale)  # scaled(base, scale) == widths: scale lies inside every rounding interval
    targets = [f"conv{i}" for i in (1, 2, 3)] + ["dense1", "dense2", "labels"]
    for name, (kernel, bias) in zip(targets, convs + denses, strict=True):
        network.get_layer(name).set_weights([kernel, bias])

    probe = np.random.default_rng(0).normal(1.0, 0.05, (PROBE_SPECTRA, N_PIXELS, 1)).astype(np.float32)
    want = np.asarray(layer(probe)[output])  # serving_default returns {output name: tensor}
    got = np.asarray(network.predict_on_batch(probe))
    diff = float(np.max(np.abs(got - want)))
    if not diff <= PROBE_ATOL:
        raise BadInput(f"{pb}: catalogdb's network with these weights differs from the SavedModel by {diff:.3g} "
                       f"(z-score) on probe spectra: not the paper's layer stack (Conv1D + LeakyReLU 0.3 + MaxPool "
                       "x3, Flatten, Dense + LeakyReLU 512, 256, Dense 5)")
    info = {"width_scale": scale, "parameters": int(network.count_params()), "serving_output": output,
            "probe_spectra": PROBE_SPECTRA, "probe_max_abs_diff_z": diff,
            "keras": version("keras")}
    return network, info


def checksums(files: AuthorsFiles) -> dict[str, str]:
    """sha256 of every SavedModel file and of the scaler file, by path relative to the `model/` folder."""
    out = {str(p.relative_to(files.folder)): runs.sha256(p)
           for p in sorted(files.saved_model.rglob("*")) if p.is_file()}
    name = str(files.scaler.relative_to(files.folder)) if files.scaler.is_relative_to(files.folder) \
        else str(files.scaler.resolve())
    out[name] = runs.sha256(files.scaler)
    return out


def _model_id(sums: dict[str, str], sigma_mg: float) -> str:
    # From the files and sigma_M: importing the same files again replaces the same registry row.
    digest = hashlib.sha256(json.dumps([sorted(sums.values()), sigma_mg]).encode()).hexdigest()
    return f"shen-luo-2024-{digest[:10]}"


def import_model(engine: Engine, folder: Path, sigma_mg: float = paper.SIGMA_MG, scaler_json: Path | None = None,
                 models_dir: Path | None = None) -> dict:
    """Convert and register the authors' network from DIR; returns the registry row (model_id, path, config, ...)."""
    if not (np.isfinite(sigma_mg) and sigma_mg >= 0):
        raise BadInput(f"--sigma-mg must be a finite number >= 0, got {sigma_mg}")
    files = locate(folder, scaler_json)
    scaler = read_scaler(files)
    models_dir = Path(models_dir) if models_dir is not None else settings().models_dir
    sums = checksums(files)
    model_id = _model_id(sums, sigma_mg)
    params = {"source": str(Path(folder).resolve()), "doi": paper.DOI_MODEL, "sigma_mg": sigma_mg,
              "scaler": str(files.scaler.resolve())}
    inputs = [{"path": str(files.folder / name), "sha256": s} for name, s in sums.items()]
    with runs.recorded(engine, "models import", params, inputs) as run:
        network, info = convert(files.saved_model)
        config = {"model_id": model_id, "imported": True, "doi": paper.DOI_MODEL,
                  "reference": "Shen & Luo (2024), A&A; network from the SolarDis repository's Zenodo record",
                  "source": str(Path(folder).resolve()), "saved_model": str(files.saved_model.resolve()),
                  "scaler_file": str(files.scaler.resolve()),
                  "scaler_format": "json" if files.scaler_is_json else "joblib StandardScaler",
                  "checksums": sums, "published sigma_M": paper.SIGMA_MG, "sigma_mg": sigma_mg,
                  "source_labels": list(SOURCE_LABELS), "labels": list(LABELS),
                  "label_map": dict(zip(SOURCE_LABELS, LABELS, strict=True)),
                  "model_files": [NETWORK_FILE], "folds": 1, **info,
                  "training_rows": paper.TRAINING_ROWS,
                  "training_rows_note": "the paper's training set (Table 2: 14,858 reference + 3,715 test), "
                                        "trained by the authors; not rows of this database",
                  "converted_with": "Keras 3 TFSMLayer(serving_default) -> catalogdb.cnn.model.build_model",
                  "code_version": __version__}
        metrics = {"imported": "no test metrics: trained and tested by the authors (paper: Sect. 3)",
                   "parameters": info["parameters"]}
        replacing = (models_dir / model_id).exists()
        folder_out = _write_folder(models_dir, model_id, network, scaler, config)
        try:
            with engine.begin() as conn:
                register(conn, {"model_id": model_id, "path": folder_out, "config": config,
                                "training_rows": paper.TRAINING_ROWS, "training_checksum": TRAINING_CHECKSUM,
                                "metrics": metrics, "sigma_mg": sigma_mg, "run_id": run.run_id})
                run.row_counts = {"models": 1, "parameters": info["parameters"]}
                run.finish(conn)  # the model and the run's end commit together
        except BaseException:
            if not replacing:  # a re-import (same files, same id) keeps the folder its earlier row names
                shutil.rmtree(folder_out, ignore_errors=True)
            raise
    return {"model_id": model_id, "path": str(folder_out), "config": config, "training_rows": paper.TRAINING_ROWS,
            "training_checksum": TRAINING_CHECKSUM, "code_version": __version__, "metrics": metrics,
            "sigma_mg": sigma_mg, "run_id": run.run_id}



def _write_folder(models_dir: Path, model_id: str, network, scaler: LabelScaler, config: dict) -> Path:
    """models_dir/<model_id>/ with the network, scaler.json and config.json, replacing an earlier import."""
    folder = models_dir / model_id
    tmp = models_dir / f".{model_id}.{secrets.token_hex(3)}.partial"
    tmp.mkdir(parents=True)
    try:
        network.save(tmp / NETWORK_FILE)
        (tmp / SCALER_FILE).write_text(json.dumps(scaler.to_json(), indent=2))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        if folder.exists():
            old = models_dir / f".{model_id}.{secrets.token_hex(3)}.old"
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
