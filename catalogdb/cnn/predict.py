"""`catalogdb predict`: CNN labels, distances and galactocentric coordinates written back to PostgreSQL.

Reading (a server-side cursor), inference and writing (COPY) run in three threads joined by bounded
queues (catalogdb.pipeline), so the CPU predicting never waits for the database. Rows go to a per-model staging table
committed batch by batch (an interrupted run resumes where it stopped); the model's rows in
cnn_prediction are replaced by the staged ones in one transaction at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs
from catalogdb.cnn.data import PHOTOMETRY_COLUMNS, PHOTOMETRY_JOINS, iter_spectra
from catalogdb.distance import photometric_distance
from catalogdb.galaxy import galactocentric
from catalogdb.pipeline import pipeline
from catalogdb.publish import publish_rows, record_prediction

LABELS = ("teff", "logg", "feh", "mg", "bprp")
COLUMNS = ["model_id", "obsid", *[c for label in LABELS for c in (f"cnn_{label}", f"cnn_{label}_err")],
           "a_g", "a_g_source", "cnn_distance", "distance_p16", "distance_p50", "distance_p84",
           "x", "y", "z", "r", "run_id"]
TYPES = ["text", "int8", *["float4"] * 10, "float4", "text", *["float4"] * 8, "int8"]

SOURCE_SQL = f"""
SELECT s.obsid, s.flux, l.ra, l.dec, {PHOTOMETRY_COLUMNS}
FROM {{sample}} t
JOIN spectrum s USING (obsid)
{PHOTOMETRY_JOINS.format(obsid="t.obsid")}
WHERE t.obsid NOT IN (SELECT obsid FROM {{stage}})
"""


@dataclass
class Batch:
    """Spectra and photometry of one batch, then its predictions."""

    obsid: np.ndarray
    flux: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    g: np.ndarray
    bp_rp: np.ndarray
    ag_gspphot: np.ndarray
    mean: np.ndarray | None = None
    spread: np.ndarray | None = None


def _as_float(values: np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _read(engine: Engine, sql: str, batch_size: int) -> Iterator[Batch]:
    with engine.connect() as conn, conn.begin():
        for flux, cols in iter_spectra(conn, sql, batch=batch_size):
            yield Batch(cols[0].astype(np.int64), flux, *(_as_float(c) for c in cols[1:]))


def derived(batch: Batch, sigma_mg: float) -> dict[str, np.ndarray]:
    """A_G, the distance PDF summaries (Eqs. 3-5, `photometric_distance`) and X, Y, Z, R."""
    d = photometric_distance(batch.g, batch.bp_rp, batch.ag_gspphot, batch.mean[:, 3], batch.mean[:, 4], sigma_mg)
    return {**d, "xyzr": galactocentric(batch.ra, batch.dec, d["mode"])}


def _nullable(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _write(engine: Engine, stage: str, model_id: str, run_id: int, sigma_mg: float, batch: Batch) -> None:
    """COPY one predicted batch, with its derived columns, into the staging table (committed on its own)."""
    d = derived(batch, sigma_mg)
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(f"COPY {stage} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(TYPES)
            for i, obsid in enumerate(batch.obsid):
                labels = [v for k in range(5) for v in (batch.mean[i, k], batch.spread[i, k])]
                copy.write_row((model_id, int(obsid), *map(_nullable, labels), _nullable(d["a_g"][i]),
                                d["a_g_source"][i], _nullable(d["mode"][i]), _nullable(d["p16"][i]),
                                _nullable(d["p50"][i]), _nullable(d["p84"][i]),
                                *map(_nullable, d["xyzr"][i]), run_id))


def predict(engine: Engine, model_id: str | None = None, all_spectra: bool = False, batch_size: int = 1024,
            progress: Callable[[str, int, int | None], None] | None = None, dask: str | None = None) -> dict:
    """Predict every target (or every stored spectrum) with a registered model; returns counts.

    With `dask` (a scheduler address, or local[:N]) the network runs on Dask workers instead of here.
    """
    from catalogdb.cnn.registry import load_model

    model = load_model(engine, model_id)
    sample = "spectrum" if all_spectra else "targets"
    # Named by the model so that a re-run after an interruption finds the rows already staged.
    stage = f"cnn_prediction_stage_{hashlib.md5(model.model_id.encode()).hexdigest()[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE UNLOGGED TABLE IF NOT EXISTS {stage} (LIKE cnn_prediction)"))
        resumed = conn.execute(sa.text(f"SELECT count(*) FROM {stage}")).scalar_one()
        total = conn.execute(sa.text(f"SELECT count(*) FROM {sample} t JOIN spectrum s USING (obsid)")).scalar_one()
    parameters = {"model_id": model.model_id, "sample": sample, "batch_size": batch_size, "resumed_rows": resumed,
                  "dask": dask}
    with runs.recorded(engine, "predict", parameters) as run:
        run.row_counts = {"staged": resumed}

        def infer(batch: Batch) -> Batch:
            batch.mean, batch.spread = model.predict(batch.flux)
            return batch

        source = _read(engine, SOURCE_SQL.format(sample=sample, stage=stage), batch_size)
        if dask:  # the workers predict; the source thread reads the batches and sends them out
            from catalogdb import dask_workers

            stages = (dask_workers.predicted(source, model, dask),)
        else:
            stages = (source, infer)
        with pipeline(*stages, maxsize=2, name="predict") as predicted:
            for batch in predicted:
                _write(engine, stage, model.model_id, run.run_id, model.sigma_mg, batch)
                run.row_counts["staged"] += len(batch.obsid)
                if progress:
                    progress("predicting", run.row_counts["staged"], total)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM cnn_prediction WHERE model_id = :m"), {"m": model.model_id})
            rows = conn.execute(sa.text(f"INSERT INTO cnn_prediction SELECT * FROM {stage}")).rowcount
            conn.execute(sa.text(f"DROP TABLE {stage}"))
            conn.execute(sa.text("ANALYZE cnn_prediction"))
            # The new predictions, the catalogue they make and the run's end are committed together.
            record_prediction(conn, model.model_id, run.run_id, rows)
            release = publish_rows(conn, model.model_id, run.run_id, run.run_id)
            run.row_counts = {"predicted": rows, "resumed": resumed, "published": release["rows"]}
            run.finish(conn)
    return {"model_id": model.model_id, "predicted": rows, "resumed": resumed, "run_id": run.run_id,
            "release_id": release["release_id"]}
