"""The published catalogue: final_catalog is a table filled from prediction_catalog, one release per publish."""

from __future__ import annotations

import hashlib
import threading

import pytest
import sqlalchemy as sa

from catalogdb.cnn.predict import predict
from catalogdb.cnn.registry import LoadedModel
from catalogdb.errors import CatalogdbError
from catalogdb.publish import publish

OTHER = "test-publish-other-model"
BATCH = 16  # spectra per predict batch in the failure test: the mock has many more


@pytest.fixture(scope="module")
def published(trained_mock):
    """The trained mock with its stored spectra predicted (and so published); a second model's rows removed after."""
    engine, model_id = trained_mock
    result = predict(engine, model_id, all_spectra=True)
    yield engine, model_id, result
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM release WHERE model_id = :m"), {"m": OTHER})
        conn.execute(sa.text("DELETE FROM cnn_prediction WHERE model_id = :m"), {"m": OTHER})
        conn.execute(sa.text("DELETE FROM cnn_model WHERE model_id = :m"), {"m": OTHER})


def _rows(conn, sql: str, **params) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def test_predict_publishes_its_model_as_a_table(published):
    engine, model_id, result = published
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = 'final_catalog'")).scalar() == "r"
        table = _rows(conn, "SELECT * FROM final_catalog ORDER BY obsid")
        view = _rows(conn, "SELECT * FROM prediction_catalog WHERE model_id = :m ORDER BY obsid", m=model_id)
        release = conn.execute(sa.text("SELECT * FROM release ORDER BY release_id DESC LIMIT 1")).mappings().one()
        # Written in q3c_ang2ipix order: the heap order is the index order (clustered without CLUSTER).
        ipix = [r[0] for r in conn.execute(sa.text("SELECT q3c_ang2ipix(ra, dec) FROM final_catalog ORDER BY ctid"))]
        plan = "\n".join(r[0] for r in conn.execute(sa.text(
            "EXPLAIN SELECT obsid FROM final_catalog WHERE q3c_radial_query(ra, dec, 10, 10, 0.5)")))
    assert len(table) == result["predicted"] > 0
    assert table == view
    assert release["model_id"] == model_id and release["row_count"] == len(table)
    assert release["predict_run_id"] == result["run_id"] and release["release_id"] == result["release_id"]
    assert ipix == sorted(ipix)
    assert "final_catalog_q3c_idx" in plan


def test_publish_switches_models_and_views_follow(published):
    engine, model_id, _ = published
    with engine.begin() as conn:  # a second model: the first one's predictions with [Fe/H] shifted by +0.5 dex
        conn.execute(sa.text("INSERT INTO cnn_model SELECT :o, created_at + interval '1 s', "
                             + ", ".join(c for c in _columns(conn, "cnn_model") if c not in ("model_id", "created_at"))
                             + " FROM cnn_model WHERE model_id = :m"), {"o": OTHER, "m": model_id})
        columns = [c for c in _columns(conn, "cnn_prediction") if c not in ("model_id", "cnn_feh")]
        conn.execute(sa.text(f"INSERT INTO cnn_prediction (model_id, cnn_feh, {', '.join(columns)}) "
                             f"SELECT :o, cnn_feh + 0.5, {', '.join(columns)} FROM cnn_prediction WHERE model_id = :m"),
                     {"o": OTHER, "m": model_id})
        before = conn.execute(sa.text("SELECT avg(feh) FROM gradient_sample")).scalar_one()
    release = publish(engine, OTHER)
    with engine.connect() as conn:
        models = _rows(conn, "SELECT DISTINCT model_id FROM final_catalog")
        after = conn.execute(sa.text("SELECT avg(feh) FROM gradient_sample")).scalar_one()
        run = conn.execute(sa.text("SELECT status, row_counts FROM run WHERE command = 'publish' "
                                   "ORDER BY run_id DESC LIMIT 1")).one()
    assert models == [(OTHER,)]
    assert after == pytest.approx(before + 0.5, abs=1e-5)  # float4 [Fe/H]: the mean of N shifts keeps ~1e-6
    assert run.status == "done" and run.row_counts["rows"] == release["rows"]
    publish(engine, model_id)  # back to the trained model for the other tests


def test_publish_without_predictions_fails_and_keeps_the_release(published):
    engine, model_id, _ = published
    with engine.connect() as conn:
        before = _rows(conn, "SELECT obsid, model_id FROM final_catalog ORDER BY obsid")
        releases = conn.execute(sa.text("SELECT count(*) FROM release")).scalar_one()
    with pytest.raises(CatalogdbError, match="no rows in cnn_prediction"):
        publish(engine, "no-such-model")
    with engine.connect() as conn:
        assert _rows(conn, "SELECT obsid, model_id FROM final_catalog ORDER BY obsid") == before
        assert conn.execute(sa.text("SELECT count(*) FROM release")).scalar_one() == releases


def _columns(conn, table: str) -> list[str]:
    return [r[0] for r in conn.execute(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position"),
        {"t": table})]


def test_a_model_failing_mid_way_fails_the_run_and_half_writes_nothing(published, monkeypatch):
    engine, model_id, _ = published
    stage = "cnn_prediction_stage_" + hashlib.md5(model_id.encode()).hexdigest()[:12]
    snapshot = {
        "final": "SELECT obsid, model_id, cnn_feh FROM final_catalog ORDER BY obsid",
        "predictions": "SELECT obsid, run_id, cnn_feh FROM cnn_prediction WHERE model_id = :m ORDER BY obsid",
        "releases": "SELECT release_id, model_id, predict_run_id FROM release ORDER BY release_id",
        "prediction_run": "SELECT model_id, run_id, row_count FROM prediction_run ORDER BY model_id",
    }
    with engine.connect() as conn:
        before = {k: _rows(conn, sql, m=model_id) for k, sql in snapshot.items()}
    calls = []
    real = LoadedModel.predict

    def fails_on_the_second_batch(self, flux, *args, **kwargs):
        calls.append(len(flux))
        if len(calls) == 2:
            raise RuntimeError("the accelerator went away")
        return real(self, flux, *args, **kwargs)

    monkeypatch.setattr(LoadedModel, "predict", fails_on_the_second_batch)
    with pytest.raises(RuntimeError, match="the accelerator went away"):
        predict(engine, model_id, all_spectra=True, batch_size=BATCH)
    monkeypatch.undo()
    with engine.connect() as conn:
        after = {k: _rows(conn, sql, m=model_id) for k, sql in snapshot.items()}
        run = conn.execute(sa.text("SELECT status, row_counts, finished_at FROM run WHERE command = 'predict' "
                                   "ORDER BY run_id DESC LIMIT 1")).one()
        staged = conn.execute(sa.text(f"SELECT count(*) FROM {stage}")).scalar_one()
    assert after == before  # no prediction, catalogue row, release or pointer of the failed run
    assert run.status == "failed" and run.finished_at is not None
    # the first batch, kept for a resume, if it reached the writer before the error stopped the pipeline
    assert run.row_counts == {"staged": staged} and staged in (0, BATCH)
    assert [t for t in threading.enumerate() if t.name.startswith("predict-")] == []

    resumed = predict(engine, model_id, all_spectra=True, batch_size=BATCH)
    with engine.connect() as conn:
        assert resumed["resumed"] == staged and resumed["predicted"] == len(before["predictions"])
        assert [r[0] for r in _rows(conn, snapshot["final"])] == [r[0] for r in before["final"]]
        assert conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": stage}).scalar() is None
        assert _rows(conn, "SELECT run_id FROM prediction_run WHERE model_id = :m", m=model_id) == [
            (resumed["run_id"],)]
