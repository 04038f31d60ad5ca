"""`catalogdb train`: fit the CNN on the training_set view, save it, register it with its test metrics.

Split (from the view, by star, stable under re-runs): 20% test; the reference set (80%) carries
folds 0-4.
- folds=5 (the paper): five networks, network k trained on the reference rows of the other folds
  and validated (learning-rate schedule, convergence) on fold k.
- folds=2..4: the first `folds` of those five networks (a shorter run with a smaller ensemble).
- folds=1 (quick runs): one network, validated on a random 10% of the reference set (seeded).
The model's prediction is the mean of its networks in physical units, and the spread (standard
deviation) across networks is its uncertainty. Test metrics are those of that ensemble mean on the
test rows, which no network saw.

Each network trains until it converges (convergence.Convergence): the optimizer steps are budgeted
(max_steps) and counted, and a network that used up the budget first is registered as not converged.
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
from sqlalchemy.engine import Engine

from catalogdb import __version__, runs
from catalogdb.cnn import LABELS, UNITS
from catalogdb.cnn.data import TrainingData, load_gaia_photometry, load_training_data
from catalogdb.cnn.registry import CONFIG_FILE, SCALER_FILE, LabelScaler, LoadedModel, register
from catalogdb.config import settings
from catalogdb.distance import photometric_distance
from catalogdb.errors import CatalogdbError

LEARNING_RATE = 1e-4  # Sect. 3
LR_FACTOR = 0.5  # ReduceLROnPlateau: halve ...
LR_PATIENCE = 5  # ... after five epochs without improvement (Sect. 3)
LR_REDUCTIONS = 3  # the paper is silent: converged = no gain for LR_PATIENCE epochs after the third halving
MAX_STEPS = 300_000  # the budget, not the stopping rule: ~100 epochs of the paper's 14,858 spectra at batch 64
QUICK_VALIDATION_FRACTION = 0.1  # folds=1
SMALL_TRAINING_SET = 5_000  # below this many training spectra, the small-set recipe (see `recipe`)
SMALL_BATCH, SMALL_LEARNING_RATE = 32, 1e-3


def recipe(n_train: int) -> tuple[int, float]:
    """(batch size, learning rate) for a network trained on n_train spectra.

    At the paper's size (14,858 reference spectra) the paper's Adam at 1e-4, batch 64. A small set
    gives few steps per epoch, and at 1e-4 the plateau rule then keeps halving a rate that has not yet
    got anywhere. Measured on a 30,000-star mock with 25% APOGEE overlap (2,392 training spectra,
    width 0.25, one network; benchmarks/results/cnn_recipe-2026-12-02.json): batch 32 at 1e-3
    converged after 5,025 steps (196 s) at validation loss 0.104, [Fe/H] response 0.94; batch 64 at
    1e-4 had not converged after 7,980 steps (621 s), validation loss 0.124, log g response 0.63
    against 0.72.
    """
    if n_train >= SMALL_TRAINING_SET:
        return 64, LEARNING_RATE
    return SMALL_BATCH, SMALL_LEARNING_RATE


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


SNR_BINS = ((10, 20), (20, 40), (40, 80), (80, None))  # S/N_g bins of the paper's Fig. 6


def response(truth: np.ndarray, pred: np.ndarray) -> float | None:
    """Slope of the least-squares line of predicted on true values: 1 for no shrinkage toward the mean."""
    ok = np.isfinite(truth) & np.isfinite(pred)
    if ok.sum() < 3 or np.ptp(truth[ok]) == 0:
        return None
    return _num(np.cov(truth[ok], pred[ok])[0, 1] / np.var(truth[ok], ddof=1))


def label_metrics(pred: np.ndarray, truth: np.ndarray, snrg: np.ndarray, spread: np.ndarray | None = None) -> dict:
    """Per label: bias, scatter, MSE, response (and the mean fold spread), overall and per S/N_g bin (Fig. 6)."""
    out = {}
    for j, (name, unit) in enumerate(zip(LABELS, UNITS, strict=True)):
        resid = pred[:, j] - truth[:, j]
        by_snr = []
        for lo, hi in SNR_BINS:
            rows = (snrg > lo) & (snrg <= hi) if hi is not None else snrg > lo
            by_snr.append({"snrg": f"{lo}-{hi}" if hi else f">{lo}", "n": int(rows.sum()),
                           "bias": _num(resid[rows].mean()) if rows.any() else None,
                           "scatter": _num(resid[rows].std()) if rows.any() else None,
                           "response": response(truth[rows, j], pred[rows, j])})
        out[name] = {"unit": unit, "bias": _num(resid.mean()), "scatter": _num(resid.std()),
                     "mse": _num(np.mean(resid**2)), "response": response(truth[:, j], pred[:, j]), "by_snrg": by_snr}
        if spread is not None:
            out[name]["mean_spread"] = _num(spread[:, j].mean())
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
            # no total: training ends on convergence, long before the step budget's epoch cap
            report(f"training network {event['fold'] + 1} of {event['folds']} (epochs, until converged)",
                   event["epoch"], None)
    return on_event


def _new_model_id(checksum: str) -> str:
    return f"cnn-{datetime.now(UTC):%Y%m%dT%H%M%S}-{checksum[:6]}{secrets.token_hex(2)}"


def train_model(engine: Engine, max_steps: int | None = None, batch_size: int | None = None, folds: int = 5,
                width_scale: float = 1.0, seed: int = 0, progress: Progress | None = None,
                models_dir: Path | None = None, learning_rate: float | None = None, patience: int = LR_PATIENCE,
                reductions: int = LR_REDUCTIONS) -> dict:
    """Train to convergence, evaluate on the test split, save under models_dir/<model_id>/ and register.

    Returns the registry row. `max_steps` defaults to MAX_STEPS, `batch_size` and `learning_rate` to
    `recipe(training rows)`.
    `progress`, when given, is called with dicts: {"stage": "data", "rows", "test_rows"},
    {"stage": "fold", "fold", "folds", "train_rows", "validation_rows", "batch_size", "learning_rate"}
    before each network, {"stage": "epoch", "fold", "folds", "epoch", "epochs", "loss", "val_loss",
    "learning_rate"} after each epoch ("epochs": the step budget's epoch cap), {"stage": "interrupted",
    "fold", "epoch"} on Ctrl-C and {"stage": "evaluate"} at the end.
    """
    import keras

    from catalogdb.cnn.convergence import Convergence
    from catalogdb.cnn.model import build_model, compile_model

    max_steps = MAX_STEPS if max_steps is None else max_steps
    if max_steps < 1 or (batch_size is not None and batch_size < 1) or width_scale <= 0:
        raise CatalogdbError("--max-steps and --batch-size must be >= 1 and --width-scale > 0")
    report = progress or (lambda event: None)
    models_dir = Path(models_dir) if models_dir is not None else settings().models_dir
    t0 = time.monotonic()

    config = {"max_steps": max_steps, "batch_size": batch_size, "learning_rate": learning_rate, "folds": folds,
              "width_scale": width_scale, "seed": seed, "lr_factor": LR_FACTOR, "lr_patience": patience,
              "lr_reductions": reductions, "loss": "mse",
              "stopping": f"converged: no val_loss gain for {patience} epochs after {reductions} halvings",
              "validation": "random 10% of the reference set" if folds == 1 else "training_set.fold = k",
              "ensemble": "mean of the fold networks; uncertainty = their standard deviation",
              "labels": list(LABELS), "label_scaling": "z-score on the reference rows",
              "backend": keras.backend.backend(), "keras": keras.__version__}
    with runs.recorded(engine, "train", config) as run:
        data = load_training_data(engine)
        plan = fold_plan(data, folds, seed)
        test = np.flatnonzero(data.is_test)
        if len(test) == 0:
            raise CatalogdbError("the training_set view has no test rows (too few spectra)")
        report({"stage": "data", "rows": len(data), "test_rows": int(len(test))})
        checksum = data.checksum()
        scaler = LabelScaler.fit(data.labels[~data.is_test])
        z = scaler.transform(data.labels)
        auto_batch, auto_lr = recipe(len(plan[0][0]))
        config["batch_size"] = batch_size = batch_size or auto_batch
        config["learning_rate"] = learning_rate = learning_rate or auto_lr

        networks, fold_info, interrupted = [], [], False
        for k, (tr, va) in enumerate(plan):
            report({"stage": "fold", "fold": k, "folds": len(plan), "train_rows": int(len(tr)),
                    "validation_rows": int(len(va)), "batch_size": batch_size, "learning_rate": learning_rate})
            keras.utils.set_random_seed(seed * 1000 + k)
            net = compile_model(build_model(width_scale), learning_rate)
            steps_per_epoch = math.ceil(len(tr) / batch_size)
            max_epochs = max(1, max_steps // steps_per_epoch)
            done = Convergence(steps_per_epoch, max_steps, patience, LR_FACTOR, reductions)
            tick = _ProgressCallback.make(progress, k, len(plan), max_epochs)
            try:
                net.fit(data.flux[tr][:, :, None], z[tr], validation_data=(data.flux[va][:, :, None], z[va]),
                        epochs=max_epochs, batch_size=batch_size, shuffle=True, verbose=0,
                        callbacks=[done, tick])
            except KeyboardInterrupt:
                interrupted = True
                report({"stage": "interrupted", "fold": k, "epoch": done.epochs_run})
                if done.best_weights is not None:
                    net.set_weights(done.best_weights)
                else:
                    net = None  # no finished epoch in this network: nothing of it to keep
            if net is not None:
                networks.append(net)
                fold_info.append({"network": k, "validation": "random 10%" if folds == 1 else f"fold {k}",
                                  "train_rows": int(len(tr)), "validation_rows": int(len(va)), **done.summary()})
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
        per_label = label_metrics(pred, truth, data.snrg[test], spread)
        sigma_mg = per_label["mg"]["scatter"]

        phot = load_gaia_photometry(engine, data.obsid[test])
        d_cnn = photometric_distance(phot["g_mag"], phot["bp_rp"], phot["ag_gspphot"], pred[:, LABELS.index("mg")],
                                     pred[:, LABELS.index("bprp0")], sigma_mg or 0.0)["mode"]
        metrics = {"n_rows": len(data), "n_reference": int((~data.is_test).sum()), "n_test": int(len(test)),
                   "labels": per_label, "distance": distance_metrics(d_cnn, phot["r_med_geo"]),
                   "networks": fold_info, "converged": all(info["converged"] for info in fold_info),
                   "interrupted": interrupted,
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
                register(conn, {"model_id": model_id, "path": folder, "config": full_config,
                                "training_rows": len(data), "training_checksum": checksum, "metrics": metrics,
                                "sigma_mg": sigma_mg, "run_id": run.run_id})
                run.row_counts = {"training_rows": len(data), "test_rows": int(len(test)),
                                  "networks": len(networks), "interrupted": interrupted}
                run.finish(conn)  # the model and the run's end commit together
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return {"model_id": model_id, "path": str(folder), "config": full_config, "training_rows": len(data),
            "training_checksum": checksum, "code_version": __version__, "metrics": metrics, "sigma_mg": sigma_mg,
            "run_id": run.run_id, "interrupted": interrupted, "figure": str(folder / "fig5.png")}
