"""The model registry: `cnn_model` rows and the model folders under $CATALOGDB_HOME/models/<model_id>/.

A model folder holds fold<k>.keras (one network per cross-validation fold), scaler.json (the label
z-score), config.json, test_predictions.npz and fig5.png. The prediction of a model is the mean of
its fold networks (in physical units) and its uncertainty is their spread (standard deviation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.cnn import LABELS, N_PIXELS
from catalogdb.errors import CatalogdbError

SCALER_FILE = "scaler.json"
CONFIG_FILE = "config.json"
PREDICT_BATCH = 256


@dataclass
class LabelScaler:
    """z = (label - mean) / std per label, in LABELS order."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, labels: np.ndarray) -> LabelScaler:
        """The mean and standard deviation of each label column."""
        std = labels.std(axis=0)
        return cls(labels.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, labels: np.ndarray) -> np.ndarray:
        """Physical units to z-scores (float32, for the network)."""
        return ((labels - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """z-scores to physical units (float64)."""
        return np.asarray(z, dtype=np.float64) * self.std + self.mean

    def to_json(self) -> dict:
        """The scaler as saved in scaler.json."""
        return {"labels": list(LABELS), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> LabelScaler:
        """Read scaler.json's content."""
        if list(data["labels"]) != list(LABELS):
            raise CatalogdbError(f"scaler labels {data['labels']} are not {list(LABELS)}")
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64))


@dataclass
class LoadedModel:
    """A trained model: its fold networks, label scaler and sigma_M."""

    model_id: str
    networks: list
    scaler: LabelScaler
    sigma_mg: float | None = None
    path: Path | None = None
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def predict_folds(self, flux: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """Each fold network's prediction in physical units: [folds, n, 5]."""
        flux = np.asarray(flux, dtype=np.float32)
        if flux.ndim != 2 or flux.shape[1] != N_PIXELS:
            raise CatalogdbError(f"flux must be [n, {N_PIXELS}] float32, got shape {flux.shape}")
        x = flux[:, :, None]  # a view: the networks take [n, 4875, 1]
        out = np.empty((len(self.networks), len(flux), len(LABELS)), dtype=np.float64)
        # predict_on_batch per slice skips model.predict's per-call data pipeline: about twice the
        # spectra/s of model.predict on 2 CPU cores for the paper's network (benchmarks/predict.py).
        for k, net in enumerate(self.networks):
            for start in range(0, len(flux), batch_size):
                z = net.predict_on_batch(x[start:start + batch_size])
                out[k, start:start + batch_size] = self.scaler.inverse(np.asarray(z))
        return out

    def predict(self, flux: np.ndarray, batch_size: int = PREDICT_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean [n, 5] and fold spread (std, zero for one network) [n, 5], physical units."""
        per_fold = self.predict_folds(flux, batch_size)
        return per_fold.mean(axis=0), per_fold.std(axis=0)


def register(conn: sa.Connection, row: dict) -> None:
    """Write a cnn_model row (model_id, path, config, training_rows, training_checksum, metrics, sigma_mg, run_id).

    A row of the same model_id is replaced: a re-import of the same files keeps its id.
    """
    from catalogdb import __version__

    conn.execute(sa.text(
        "insert into cnn_model (model_id, path, config, training_rows, training_checksum, code_version, "
        "metrics, sigma_mg, run_id) values (:model_id, :path, cast(:config as jsonb), :training_rows, "
        ":training_checksum, :version, cast(:metrics as jsonb), :sigma_mg, :run_id) on conflict (model_id) do "
        "update set created_at = now(), path = excluded.path, config = excluded.config, "
        "training_rows = excluded.training_rows, training_checksum = excluded.training_checksum, "
        "code_version = excluded.code_version, metrics = excluded.metrics, sigma_mg = excluded.sigma_mg, "
        "run_id = excluded.run_id"),
        {**row, "path": str(row["path"]), "config": json.dumps(row["config"]), "metrics": json.dumps(row["metrics"]),
         "version": __version__})


def _row_dict(row) -> dict:
    d = dict(row._mapping)
    if d.get("created_at") is not None:
        d["created_at"] = d["created_at"].isoformat()
    return d


def list_models(engine: Engine) -> list[dict]:
    """Registry rows, newest first: model_id, created_at, path, config, training_rows, metrics, sigma_mg, ..."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select model_id, created_at, path, config, training_rows, training_checksum, code_version, "
            "metrics, sigma_mg, run_id from cnn_model order by created_at desc, model_id desc")).all()
    return [_row_dict(r) for r in rows]


def load_model(engine: Engine, model_id: str | None = None) -> LoadedModel:
    """Load a registered model (the newest when model_id is None) with its fold networks and scaler."""
    with engine.connect() as conn:
        if model_id is None:
            row = conn.execute(sa.text("select model_id, path, config, metrics, sigma_mg from cnn_model "
                                       "order by created_at desc, model_id desc limit 1")).first()
            if row is None:
                raise CatalogdbError("no trained model in the registry: run `catalogdb train` first")
        else:
            row = conn.execute(sa.text("select model_id, path, config, metrics, sigma_mg from cnn_model "
                                       "where model_id = :id"), {"id": model_id}).first()
            if row is None:
                raise CatalogdbError(f"no model {model_id!r} in the registry (see `catalogdb models`)")
    return load_folder(Path(row.path), row.model_id, row.sigma_mg, row.config, row.metrics)


def load_folder(path: Path, model_id: str | None = None, sigma_mg: float | None = None,
                config: dict | None = None, metrics: dict | None = None) -> LoadedModel:
    """Load a model folder (fold networks, scaler, config) without the database."""
    import keras

    if not path.is_dir():
        raise CatalogdbError(f"model folder {path} is missing (moved, or CATALOGDB_HOME changed?)")
    config = config or json.loads((path / CONFIG_FILE).read_text())
    files = [path / name for name in config.get("model_files", [])] or sorted(path.glob("fold*.keras"))
    missing = [str(f) for f in files if not f.exists()]
    if not files or missing:
        raise CatalogdbError(f"model folder {path} lacks its networks: {', '.join(missing) or 'fold*.keras'}")
    networks = [keras.saving.load_model(f, compile=False) for f in files]
    scaler = LabelScaler.from_json(json.loads((path / SCALER_FILE).read_text()))
    return LoadedModel(model_id or config.get("model_id", path.name), networks, scaler,
                       None if sigma_mg is None else float(sigma_mg), path, config, metrics or {})
