"""`catalogdb train`: fit the CNN on the training_set view, save it, register it with its test metrics.

Split (from the view, stable under re-runs): 20% test; the reference set (80%) carries folds 0-4.
- folds=5 (the paper): five networks, network k trained on the reference rows of the other folds
  and validated (learning-rate schedule, early stopping) on fold k.
- folds=2..4: the first `folds` of those five networks (a shorter run with a smaller ensemble).
- folds=1 (quick runs): one network, validated on a random 10% of the reference set (seeded).
The model's prediction is the mean of its networks in physical units, and the spread (standard
deviation) across networks is its uncertainty. Test metrics are those of that ensemble mean on the
test rows, which no network saw.

Labels are z-scored with the mean and standard deviation of the reference rows (scaler.json).
Ctrl-C during training keeps the best weights of the interrupted network (plus the networks
already finished), skips the remaining folds, then evaluates, saves and registers as usual; the
result says `interrupted: True`.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import __version__, runs
from catalogdb.cnn import LABELS, UNITS
from catalogdb.cnn.data import TrainingData, load_gaia_photometry, load_training_data
from catalogdb.cnn.registry import CONFIG_FILE, SCALER_FILE, LabelScaler, LoadedModel
from catalogdb.config import settings
from catalogdb.distance import distance_mode, extinction_g
from catalogdb.errors import CatalogdbError

LEARNING_RATE = 1e-4  # Sect. 3
LR_FACTOR = 0.5  # ReduceLROnPlateau: halve ...
LR_PATIENCE = 5  # ... after five epochs without improvement (Sect. 3)
EARLY_STOPPING_PATIENCE = 10  # the paper is silent; twice the LR patience lets one halving act first
QUICK_VALIDATION_FRACTION = 0.1  # folds=1

Progress = Callable[[dict], None]


def fold_plan(data: TrainingData, folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) per network, as indices into `data`; test rows are never in either."""
    if not 1 <= folds <= 5:
        raise CatalogdbError(f"--folds must be 1 (one network, random 10% validation) to 5 (the paper), got {folds}")
    ref = np.flatnonzero(~data.is_test)
    if folds == 1:
        perm = np.random.default_rng(seed).permutation(ref)
        n_val = max(1, int(round(QUICK_VALIDATION_FRACTION * len(ref))))
        plan = [(np.sort(perm[n_val:]), np.sort(perm[:n_val]))]
    else:
        plan = [(ref[data.fold[ref] != k], ref[data.fold[ref] == k]) for k in range(folds)]
    for k, (tr, va) in enumerate(plan):
        if len(tr) == 0 or len(va) == 0:
            raise CatalogdbError(f"network {k}: {len(tr)} training and {len(va)} validation rows; the training "
                                 f"set ({len(ref)} reference rows) is too small for --folds {folds}")
    return plan


def _label_metrics(pred: np.ndarray, truth: np.ndarray, spread: np.ndarray) -> dict:
    out = {}
    for j, (name, unit) in enumerate(zip(LABELS, UNITS, strict=True)):
        resid = pred[:, j] - truth[:, j]
        out[name] = {"unit": unit, "bias": _num(resid.mean()), "scatter": _num(resid.std()),
                     "mse": _num(np.mean(resid**2)), "mean_spread": _num(spread[:, j].mean())}
    return out


def _num(value) -> float | None:
    """A JSON-safe float (jsonb has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def distance_metrics(d_cnn: np.ndarray, r_med_geo: np.ndarray) -> dict:
    """Fractional error (d - r_med_geo)/r_med_geo: median and std; scatter and bias of d - r_med_geo in pc."""
    ok = np.isfinite(d_cnn) & np.isfinite(r_med_geo) & (r_med_geo > 0)
    frac = (d_cnn[ok] - r_med_geo[ok]) / r_med_geo[ok]
    diff = d_cnn[ok] - r_med_geo[ok]
    if not ok.any():
        return {"n": 0, "frac_median": None, "frac_std": None, "bias_pc": None, "scatter_pc": None}
    return {"n": int(ok.sum()), "frac_median": _num(np.median(frac)), "frac_std": _num(frac.std()),
            "bias_pc": _num(diff.mean()), "scatter_pc": _num(diff.std())}


class _ProgressCallback:
    """Builds a keras Callback that reports each epoch (defined lazily so keras loads only when training)."""

    @staticmethod
    def make(progress: Progress | None, fold: int, folds: int, epochs: int):
        import keras

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.last_epoch = epoch + 1
                if progress is not None:
                    progress({"stage": "epoch", "fold": fold, "folds": folds, "epoch": epoch + 1,
                              "epochs": epochs, "loss": _num(logs.get("loss", float("nan"))),
                              "val_loss": _num(logs.get("val_loss", float("nan"))),
                              "learning_rate": _num(logs.get("learning_rate", float("nan")))})

        cb = Report()
        cb.last_epoch = 0
        return cb


def epoch_bars(report: Callable[[str, int, int | None], None]) -> Progress:
    """Turn the (step, done, total) progress protocol of the other commands into training's event callback."""
    def on_event(event: dict) -> None:
        if event.get("stage") == "epoch":
            report(f"training network {event['fold'] + 1} of {event['folds']} (epochs)", event["epoch"],
                   event["epochs"])
    return on_event


def _new_model_id(checksum: str) -> str:
    return f"cnn-{datetime.now(UTC):%Y%m%dT%H%M%S}-{checksum[:6]}{secrets.token_hex(2)}"


def train_model(engine: Engine, epochs: int = 100, batch_size: int = 64, folds: int = 5, width_scale: float = 1.0,
                seed: int = 0, progress: Progress | None = None, models_dir: Path | None = None,
                patience: int = EARLY_STOPPING_PATIENCE) -> dict:
    """Train, evaluate on the test split, save under models_dir/<model_id>/ and register; returns the registry row.

    `progress`, when given, is called with dicts: {"stage": "data", "rows", "test_rows"},
    {"stage": "fold", "fold", "folds", "train_rows", "validation_rows"} before each network,
    {"stage": "epoch", "fold", "folds", "epoch", "epochs", "loss", "val_loss", "learning_rate"} after
    each epoch, {"stage": "interrupted", "fold", "epoch"} on Ctrl-C and {"stage": "evaluate"} at the end.
    """
    import keras

    from catalogdb.cnn.model import build_model, compile_model

    if epochs < 1 or batch_size < 1 or width_scale <= 0:
        raise CatalogdbError("--epochs and --batch-size must be >= 1 and --width-scale > 0")
    report = progress or (lambda event: None)
    models_dir = Path(models_dir) if models_dir is not None else settings().models_dir
    t0 = time.monotonic()

    config = {"epochs": epochs, "batch_size": batch_size, "folds": folds, "width_scale": width_scale, "seed": seed,
              "learning_rate": LEARNING_RATE, "lr_factor": LR_FACTOR, "lr_patience": LR_PATIENCE,
              "early_stopping_patience": patience, "loss": "mse",
              "validation": "random 10% of the reference set" if folds == 1 else "training_set.fold = k",
              "ensemble": "mean of the fold networks; uncertainty = their standard deviation",
              "labels": list(LABELS), "label_scaling": "z-score on the reference rows",
              "backend": keras.backend.backend(), "keras": keras.__version__}
    with engine.begin() as conn:
        run_id = runs.start(conn, "train", config)
    try:
        data = load_training_data(engine)
        plan = fold_plan(data, folds, seed)
        test = np.flatnonzero(data.is_test)
        if len(test) == 0:
            raise CatalogdbError("the training_set view has no test rows (too few spectra)")
        report({"stage": "data", "rows": len(data), "test_rows": int(len(test))})
        checksum = data.checksum()
        scaler = LabelScaler.fit(data.labels[~data.is_test])
        z = scaler.transform(data.labels)

        networks, fold_info, interrupted = [], [], False
        for k, (tr, va) in enumerate(plan):
            report({"stage": "fold", "fold": k, "folds": len(plan), "train_rows": int(len(tr)),
                    "validation_rows": int(len(va))})
            keras.utils.set_random_seed(seed * 1000 + k)
            net = compile_model(build_model(width_scale), LEARNING_RATE)
            stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
            lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=LR_FACTOR, patience=LR_PATIENCE)
            tick = _ProgressCallback.make(progress, k, len(plan), epochs)
            try:
                net.fit(data.flux[tr][:, :, None], z[tr], validation_data=(data.flux[va][:, :, None], z[va]),
                        epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                        callbacks=[stop, lr, tick])  # tick last: it sees the epoch after stop recorded it
            except KeyboardInterrupt:
                interrupted = True
                report({"stage": "interrupted", "fold": k, "epoch": tick.last_epoch})
                if stop.best_weights is not None:
                    net.set_weights(stop.best_weights)
                else:
                    net = None  # no finished epoch in this network: nothing of it to keep
            if net is not None:
                networks.append(net)
                fold_info.append({"network": k, "validation": "random 10%" if folds == 1 else f"fold {k}",
                                  "train_rows": int(len(tr)), "validation_rows": int(len(va)),
                                  "epochs_run": int(tick.last_epoch), "best_epoch": int(stop.best_epoch + 1),
                                  "best_val_loss": _num(stop.best), "stopped_early": bool(stop.stopped_epoch > 0)})
            if interrupted:
                break
        if not networks:
            raise CatalogdbError("interrupted before the first epoch finished: nothing to save")

        report({"stage": "evaluate"})
        model_id = _new_model_id(checksum)
        ensemble = LoadedModel(model_id, networks, scaler)
        pred_all = ensemble.predict_folds(data.flux[test])
        pred, spread = pred_all.mean(axis=0), pred_all.std(axis=0)
        truth = data.labels[test]
        label_metrics = _label_metrics(pred, truth, spread)
        sigma_mg = label_metrics["mg"]["scatter"]

        phot = load_gaia_photometry(engine, data.obsid[test])
        a_g = extinction_g(phot["bp_rp"], pred[:, LABELS.index("bprp0")])
        d_cnn = distance_mode(phot["phot_g_mean_mag"], pred[:, LABELS.index("mg")], sigma_mg or 0.0, a_g)
        metrics = {"n_rows": len(data), "n_reference": int((~data.is_test).sum()), "n_test": int(len(test)),
                   "labels": label_metrics, "distance": distance_metrics(d_cnn, phot["r_med_geo"]),
                   "networks": fold_info, "interrupted": interrupted,
                   "parameters": int(networks[0].count_params()), "seconds": round(time.monotonic() - t0, 1)}

        folder = models_dir / model_id
        tmp = models_dir / f".{model_id}.partial"
        tmp.mkdir(parents=True)
        try:
            files = [f"fold{info['network']}.keras" for info in fold_info]
            for net, name in zip(networks, files, strict=True):
                net.save(tmp / name)
            (tmp / SCALER_FILE).write_text(json.dumps(scaler.to_json(), indent=2))
            full_config = {**config, "model_id": model_id, "model_files": files, "parameters": metrics["parameters"],
                           "training_rows": len(data), "training_checksum": checksum, "code_version": __version__}
            (tmp / CONFIG_FILE).write_text(json.dumps(full_config, indent=2))
            np.savez_compressed(tmp / "test_predictions.npz", obsid=data.obsid[test], label=truth, pred=pred,
                                spread=spread, snrg=data.snrg[test], d_cnn=d_cnn, **phot)
            from catalogdb.cnn.plots import fig5

            fig5(tmp / "fig5.png", truth, pred, d_cnn, phot["r_med_geo"], metrics, model_id)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "insert into cnn_model (model_id, path, config, training_rows, training_checksum, code_version, "
                    "metrics, sigma_mg, run_id) values (:model_id, :path, cast(:config as jsonb), :rows, :checksum, "
                    ":version, cast(:metrics as jsonb), :sigma_mg, :run_id)"),
                    {"model_id": model_id, "path": str(folder), "config": json.dumps(full_config),
                     "rows": len(data), "checksum": checksum, "version": __version__,
                     "metrics": json.dumps(metrics), "sigma_mg": sigma_mg, "run_id": run_id})
                runs.finish(conn, run_id, {"training_rows": len(data), "test_rows": int(len(test)),
                                           "networks": len(networks), "interrupted": interrupted})
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    except BaseException:
        with engine.begin() as conn:
            runs.finish(conn, run_id, {}, "failed")
        raise
    return {"model_id": model_id, "path": str(folder), "config": full_config, "training_rows": len(data),
            "training_checksum": checksum, "code_version": __version__, "metrics": metrics, "sigma_mg": sigma_mg,
            "run_id": run_id, "interrupted": interrupted, "figure": str(folder / "fig5.png")}
