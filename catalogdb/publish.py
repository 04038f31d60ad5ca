"""`catalogdb publish`: one model's predictions become final_catalog, the table that SQL, TAP and exports read.

The rows come from the view prediction_catalog (the one definition of the columns). They are written in
q3c_ang2ipix order, so the table is clustered on its q3c index without a CLUSTER pass, and analysed.
The replacement is one transaction: a reader sees the old release or the new one, never a mix (readers
wait on the table's lock while it runs). Each publish adds a row to `release`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogdb import runs
from catalogdb.errors import CatalogdbError


def record_prediction(conn: Connection, model_id: str, run_id: int, rows: int) -> None:
    """Name run_id as the predict run whose rows cnn_prediction now holds for model_id (in conn's transaction)."""
    conn.execute(sa.text(
        "INSERT INTO prediction_run (model_id, run_id, row_count) VALUES (:m, :r, :n) "
        "ON CONFLICT (model_id) DO UPDATE SET run_id = excluded.run_id, row_count = excluded.row_count, "
        "predicted_at = now()"), {"m": model_id, "r": run_id, "n": rows})


def _predict_run(conn: Connection, model_id: str) -> int | None:
    """The predict run that wrote this model's cnn_prediction rows (None for rows put there by hand)."""
    return conn.execute(sa.text("SELECT run_id FROM prediction_run WHERE model_id = :m"), {"m": model_id}).scalar()


def newest_predicted_model(conn: Connection) -> str:
    """The model predicted most recently: what `catalogdb publish` publishes by default."""
    model_id = conn.execute(sa.text(
        "SELECT model_id FROM prediction_run ORDER BY predicted_at DESC, run_id DESC LIMIT 1")).scalar()
    if model_id is None:
        raise CatalogdbError("nothing to publish: no predict run has finished (run catalogdb predict first)")
    return model_id


def publish_rows(conn: Connection, model_id: str, predict_run_id: int | None, publish_run_id: int | None) -> dict:
    """Replace final_catalog with model_id's rows of prediction_catalog; record the release (in conn's transaction)."""
    found = conn.execute(sa.text("SELECT 1 FROM cnn_prediction WHERE model_id = :m LIMIT 1"), {"m": model_id})
    if found.scalar() is None:
        raise CatalogdbError(f"nothing to publish: model {model_id} has no rows in cnn_prediction")
    conn.execute(sa.text("TRUNCATE final_catalog"))
    rows = conn.execute(sa.text(
        "INSERT INTO final_catalog SELECT * FROM prediction_catalog WHERE model_id = :m "
        "ORDER BY q3c_ang2ipix(ra, dec)"), {"m": model_id}).rowcount
    release_id = conn.execute(sa.text(
        "INSERT INTO release (model_id, predict_run_id, publish_run_id, row_count) "
        "VALUES (:m, :predict, :publish, :rows) RETURNING release_id"),
        {"m": model_id, "predict": predict_run_id, "publish": publish_run_id, "rows": rows}).scalar_one()
    conn.execute(sa.text("ANALYZE final_catalog"))
    return {"release_id": release_id, "model_id": model_id, "rows": rows}


def publish(engine: sa.Engine, model_id: str | None = None) -> dict:
    """Publish model_id's predictions (default: the newest predict run's model) as final_catalog."""
    with engine.begin() as conn:
        model_id = model_id or newest_predicted_model(conn)
        predict_run_id = _predict_run(conn, model_id)
        with runs.recorded(conn, "publish", {"model_id": model_id, "predict_run_id": predict_run_id}) as run:
            release = publish_rows(conn, model_id, predict_run_id, run.run_id)
            run.row_counts = {"rows": release["rows"]}
    return release
