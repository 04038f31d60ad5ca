"""`catalogdb baselines`: would a simpler model do? (Appendix C, Table C.1 of Shen & Luo 2024).

LightGBM, random forest, k-nearest neighbours and ridge regression on the CNN's own training set and
split (the training_set view: fit on the reference rows, score on the test rows), each tuned by a small
grid search with 3-fold cross-validation on the reference rows. The paper tuned its baselines with
AutoGluon; these are plain scikit-learn / LightGBM models with a small, stated search instead.

- Inputs: the 4875-pixel normalised spectra. Ridge (standardised pixels) and LightGBM (trees pick
  pixels themselves; 30% of them per tree) take all pixels. kNN and the random forest take the first
  principal components (PCA fitted inside each CV fold): Euclidean distance over 4875 noisy pixels is
  dominated by noise, and a forest over 4875 features costs ~75x more per split for little gain.
- Targets: the five labels z-scored with the reference rows' mean and standard deviation (the CNN's
  scaler), so multi-output models weigh them equally; LightGBM fits one booster per label.
- Score: test MSE per label in physical units, and the weighted mean MSE of Table C.1. The paper does
  not define the weights; its table does: a least-squares fit of its last column on the five MSE
  columns (11 models) gives weights 1 / (5 sigma_j^2) with sigma = 312 K, 0.269 dex, 0.264 dex,
  0.925 mag, 0.124 mag (residuals < 2e-5, the table's rounding), i.e. plausible label standard
  deviations of the training set. So weighted MSE = mean_j MSE_j / var_j, the MSE in z-score units
  (what the CNN minimises); var_j is the label's variance on the reference rows.

Rows go to baseline_model (model_id = the CNN they are compared with, name), one per baseline plus a
`cnn` row holding the CNN's own test MSEs scored the same way; re-running replaces them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import paper, runs
from catalogdb.cnn import LABELS, UNITS
from catalogdb.errors import CatalogdbError

MODELS = ("lightgbm", "random_forest", "knn", "ridge")
CV_FOLDS = 3

# The paper model closest to each of ours, for the side-by-side.
PAPER_COUNTERPART = {"cnn": "CNN", "lightgbm": "LightGBM", "random_forest": "RandomForestMSE",
                     "knn": "KNeighborsDist", "ridge": None}

PCA_COMPONENTS = 64

# The small searches (3-fold CV on the reference rows). Fixed settings are in _estimator.
GRIDS: dict[str, dict[str, list]] = {
    "lightgbm": {"estimator__num_leaves": [15, 63]},
    "random_forest": {"rf__max_features": [0.33, 1.0], "rf__min_samples_leaf": [1, 5]},
    "knn": {"pca__n_components": [16, 64], "knn__n_neighbors": [5, 15], "knn__weights": ["uniform", "distance"]},
    "ridge": {"ridge__alpha": [1.0, 10.0, 100.0, 1000.0, 10000.0]},
}
INPUTS = {"lightgbm": "4875 pixels", "random_forest": f"PCA ({PCA_COMPONENTS} components) of the 4875 pixels",
          "knn": "PCA (n_components searched) of the 4875 pixels", "ridge": "4875 standardised pixels"}

Progress = Callable[[dict], None]


def weighted_mse(mse: np.ndarray | list[float], variance: np.ndarray) -> float:
    """Table C.1's weighted mean MSE: the mean over labels of MSE_j / var_j."""
    return float(np.mean(np.asarray(mse, dtype=np.float64) / np.asarray(variance, dtype=np.float64)))


def _estimator(name: str, seed: int, n_jobs: int, memory: str | None):
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "lightgbm":
        from lightgbm import LGBMRegressor
        from sklearn.multioutput import MultiOutputRegressor

        # 63 bins and 150 trees at rate 0.1 keep a fit on 4875 pixels affordable on a laptop (binning the
        # pixels, ~4 s per fit and label at 2,300 rows, is paid again for every CV fit)
        booster = LGBMRegressor(n_estimators=150, learning_rate=0.1, max_bin=63, colsample_bytree=0.3, subsample=0.8,
                                subsample_freq=1, min_child_samples=20, random_state=seed, n_jobs=n_jobs,
                                verbose=-1)
        return MultiOutputRegressor(booster)
    if name == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        return Pipeline([("pca", PCA(PCA_COMPONENTS, random_state=seed)),
                         ("rf", RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=n_jobs))],
                        memory=memory)
    if name == "knn":
        from sklearn.neighbors import KNeighborsRegressor

        return Pipeline([("pca", PCA(PCA_COMPONENTS, random_state=seed)), ("knn", KNeighborsRegressor(n_jobs=n_jobs))],
                        memory=memory)
    if name == "ridge":
        from sklearn.linear_model import Ridge

        return Pipeline([("scale", StandardScaler()), ("ridge", Ridge())], memory=memory)
    raise CatalogdbError(f"unknown baseline {name!r}; choose from {', '.join(MODELS)}")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _cnn_row(engine: Engine, model_id: str | None) -> sa.Row:
    with engine.connect() as conn:
        if model_id is None:
            row = conn.execute(sa.text("select model_id, config, metrics, training_checksum from cnn_model "
                                       "order by created_at desc, model_id desc limit 1")).first()
            if row is None:
                raise CatalogdbError("no trained model in the registry: run `catalogdb train` first (the baselines "
                                     "are compared with a CNN on its training set and split)")
        else:
            row = conn.execute(sa.text("select model_id, config, metrics, training_checksum from cnn_model "
                                       "where model_id = :id"), {"id": model_id}).first()
            if row is None:
                raise CatalogdbError(f"no model {model_id!r} in the registry (see `catalogdb models`)")
    return row


def run_baselines(engine: Engine, models=MODELS, model_id: str | None = None, cv: int = CV_FOLDS, seed: int = 0,
                  grids: dict[str, dict[str, list]] | None = None, n_jobs: int | None = None,
                  progress: Progress | None = None) -> list[dict]:
    """Tune, fit and test each baseline on the CNN's training set and split; store and return the rows.

    Returns one dict per model, the CNN first: name, params (inputs, grid, best, cv_weighted_mse,
    seconds, ...), test_mse {label: MSE in physical units}, weighted_mse. `grids` overrides GRIDS per model.
    """
    from sklearn.model_selection import GridSearchCV, KFold

    from catalogdb.cnn.data import load_training_data
    from catalogdb.cnn.train import label_metrics

    models = tuple(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise CatalogdbError(f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from "
                             f"{', '.join(MODELS)}")
    if cv < 2:
        raise CatalogdbError("cv must be >= 2")
    report = progress or (lambda event: None)
    grids = {**GRIDS, **(grids or {})}
    n_jobs = n_jobs or os.cpu_count() or 1
    cnn = _cnn_row(engine, model_id)
    data = load_training_data(engine)
    if data.checksum() != cnn.training_checksum:
        raise CatalogdbError(f"the training_set view changed since model {cnn.model_id} was trained (checksum "
                             f"differs): the baselines would not use its training set and split; train a new model "
                             f"or restore the data")
    ref, test = np.flatnonzero(~data.is_test), np.flatnonzero(data.is_test)
    if len(test) == 0 or len(ref) < 2 * cv:
        raise CatalogdbError(f"{len(ref)} reference and {len(test)} test rows: too few for {cv}-fold baselines")
    mean, std = data.labels[ref].mean(axis=0), data.labels[ref].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    variance = std**2
    x_ref, x_test = data.flux[ref], data.flux[test]
    z_ref = (data.labels[ref] - mean) / std
    truth = data.labels[test]
    common = {"n_reference": int(len(ref)), "n_test": int(len(test)), "training_checksum": data.checksum(),
              "label_std": dict(zip(LABELS, map(float, std), strict=True)), "target": "z-scored labels"}

    parameters = {"model_id": cnn.model_id, "models": list(models), "cv": cv, "seed": seed,
                  "grids": {m: grids[m] for m in models}}
    with runs.recorded(engine, "baselines", parameters) as run:
        results = [_cnn_result(cnn, variance, common)]
        for name in models:
            t0 = time.monotonic()
            report({"stage": "search", "name": name, "grid": grids[name]})
            with tempfile.TemporaryDirectory(prefix="catalogdb-baselines-") as cache:
                search = GridSearchCV(_estimator(name, seed, n_jobs, cache), grids[name],
                                      scoring="neg_mean_squared_error", cv=KFold(cv, shuffle=True, random_state=seed),
                                      refit=True, n_jobs=1)
                with warnings.catch_warnings():
                    # small ridge alphas on 4875 pixels are ill-conditioned; the search scores them, it need not warn
                    warnings.filterwarnings("ignore", message="Ill-conditioned matrix")
                    warnings.filterwarnings("ignore", message="An ill-conditioned matrix")
                    search.fit(x_ref, z_ref)
                t_fit = time.monotonic() - t0
                pred = search.predict(x_test) * std + mean
            mse = ((pred - truth) ** 2).mean(axis=0)
            test_metrics = label_metrics(pred, truth, data.snrg[test])  # one model: no spread
            cv_table = [{"params": {k: _jsonable(v) for k, v in p.items()}, "cv_weighted_mse": _num(-s)}
                        for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                        strict=True)]
            params = {"inputs": INPUTS[name], "grid": grids[name], "best": {k: _jsonable(v) for k, v in
                                                                          search.best_params_.items()},
                      "cv_folds": cv, "cv_weighted_mse": _num(-search.best_score_), "cv_results": cv_table,
                      "seconds": round(time.monotonic() - t0, 1), "search_and_refit_seconds": round(t_fit, 1),
                      "seed": seed, "labels": test_metrics, **common}
            result = {"name": name, "params": params, "test_mse": dict(zip(LABELS, map(float, mse), strict=True)),
                      "weighted_mse": weighted_mse(mse, variance)}
            report({"stage": "done", "name": name, "weighted_mse": result["weighted_mse"],
                    "seconds": params["seconds"]})
            results.append(result)
        _store(engine, cnn.model_id, results)
        run.row_counts = {"models": len(results)}
    for r in results:
        r["model_id"] = cnn.model_id
    return results


def _cnn_result(cnn, variance: np.ndarray, common: dict) -> dict:
    labels = (cnn.metrics or {}).get("labels", {})
    mse = [labels.get(name, {}).get("mse") for name in LABELS]
    config = cnn.config or {}
    params = {"inputs": "4875 pixels", "network": {k: config.get(k) for k in
                                                   ("width_scale", "max_steps", "folds", "batch_size", "learning_rate",
                                                    "parameters")},
              "source": "cnn_model.metrics (test rows)", **common}
    ok = all(v is not None for v in mse)
    return {"name": "cnn", "params": params,
            "test_mse": {name: (None if v is None else float(v)) for name, v in zip(LABELS, mse, strict=True)},
            "weighted_mse": weighted_mse(mse, variance) if ok else None}


def _store(engine: Engine, model_id: str, results: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("delete from baseline_model where model_id = :m and name = any(:n)"),
                     {"m": model_id, "n": [r["name"] for r in results]})
        conn.execute(sa.text("insert into baseline_model (model_id, name, params, test_mse, weighted_mse) values "
                             "(:m, :name, cast(:params as jsonb), cast(:mse as jsonb), :w)"),
                     [{"m": model_id, "name": r["name"], "params": json.dumps(r["params"], default=_jsonable),
                       "mse": json.dumps(r["test_mse"]), "w": r["weighted_mse"]} for r in results])


def comparison_table(engine: Engine, model_id: str | None = None) -> list[dict]:
    """Stored rows for a CNN (the newest when None): the CNN first, then baselines by weighted MSE.

    Each: model_id, name, test_mse {label: MSE}, weighted_mse, paper (Table C.1's counterpart row as
    {label: MSE, "weighted": ...} or None), created_at.
    """
    model_id = _cnn_row(engine, model_id).model_id
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select name, test_mse, weighted_mse, created_at from baseline_model "
                                    "where model_id = :m order by name <> 'cnn', weighted_mse nulls last, name"),
                            {"m": model_id}).all()
    out = []
    for name, mse, w, created in rows:
        counterpart = PAPER_COUNTERPART.get(name)
        ref = None if counterpart is None else {**dict(zip(LABELS, paper.TABLE_C1[counterpart][:5], strict=True)),
                                                "weighted": paper.TABLE_C1[counterpart][5], "model": counterpart}
        out.append({"model_id": model_id, "name": name, "test_mse": mse, "weighted_mse": w, "paper": ref,
                    "created_at": created.isoformat() if created else None})
    return out


def format_comparison(rows: list[dict]) -> list[str]:
    """Plain-text lines of the side-by-side (ours, then Table C.1's counterpart in brackets)."""
    head = f"{'model':<14}" + "".join(f"{f'{n} ({u}^2)':>18}" for n, u in zip(LABELS, UNITS, strict=True))
    lines = [head + f"{'weighted MSE':>16}"]
    for r in rows:
        cells = []
        for label in LABELS:
            v = r["test_mse"].get(label)
            cells.append(f"{'' if v is None else format(v, '.4g'):>18}")
        w = r["weighted_mse"]
        lines.append(f"{r['name']:<14}" + "".join(cells) + f"{'' if w is None else format(w, '.4f'):>16}")
        if r["paper"]:
            p = r["paper"]
            lines.append(f"{'  paper ' + p['model'][:6]:<14}" + "".join(f"{format(p[label], '.4g'):>18}"
                                                                         for label in LABELS)
                         + f"{p['weighted']:>16.4f}")
    return lines
