"""Run bookkeeping: runs.recorded always closes its run; migration 0019 moves control state out of the run log."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from catalogdb import runs
from catalogdb.db import migrate, q3c
from catalogdb.publish import newest_predicted_model
from conftest import create_database


@pytest.fixture
def engine(embedded_server):
    eng = sa.create_engine(create_database(embedded_server))
    with eng.begin() as conn:
        q3c.ensure(conn, "compat")
    yield eng
    eng.dispose()


def _runs(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "select command, status, row_counts, inputs, finished_at is not null from run order by run_id"))]


def test_recorded_with_an_engine_commits_the_row_at_once_and_closes_it(engine):
    migrate.upgrade(engine)
    with runs.recorded(engine, "demo", {"n": 1}, [{"path": "a"}]) as run:
        assert _runs(engine) == [("demo", "running", {}, [{"path": "a"}], False)]  # visible while it runs
        run.row_counts = {"rows": 3}
    assert _runs(engine) == [("demo", "done", {"rows": 3}, [{"path": "a"}], True)]

    with pytest.raises(ZeroDivisionError):
        with runs.recorded(engine, "demo", {"n": 2}) as run:
            run.row_counts = {"rows": 1}
            raise ZeroDivisionError
    assert _runs(engine)[-1] == ("demo", "failed", {"rows": 1}, [], True)


def test_recorded_in_a_transaction_keeps_its_failure_through_the_rollback(engine):
    migrate.upgrade(engine)
    with pytest.raises(KeyboardInterrupt):
        with engine.begin() as conn, runs.recorded(conn, "demo", {"n": 3}, [{"path": "b"}]) as run:
            conn.execute(sa.text("insert into lamost_star (obsid, ra, dec) values (1, 10, 20)"))
            run.row_counts = {"inserted": 1}
            raise KeyboardInterrupt
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from lamost_star")).scalar_one() == 0  # the work rolled back
    assert _runs(engine) == [("demo", "failed", {"inserted": 1}, [{"path": "b"}], True)]

    with engine.begin() as conn, runs.recorded(conn, "demo", {"n": 4}) as run:
        run.row_counts, run.inputs = {"inserted": 0}, [{"path": "c"}]
    assert _runs(engine)[-1] == ("demo", "done", {"inserted": 0}, [{"path": "c"}], True)


def test_upgrade_to_0019_backfills_ingested_files_and_prediction_runs(engine):
    migrate.upgrade(engine, "0016")
    ingest = [{"path": "/d/gaia.csv", "sha256": "aa", "size": 10, "read": 5, "skipped": False},
              {"path": "/d/old.csv", "sha256": "bb", "size": 20, "skipped": True}]
    with engine.begin() as conn:
        def run(command, status, parameters, inputs=(), counts=None):
            return conn.execute(sa.text(
                "insert into run (command, status, parameters, inputs, row_counts, code_version, finished_at) "
                "values (:c, :s, cast(:p as jsonb), cast(:i as jsonb), cast(:n as jsonb), '0', now()) "
                "returning run_id"), {"c": command, "s": status, "p": json.dumps(parameters),
                                      "i": json.dumps(list(inputs)), "n": json.dumps(counts or {})}).scalar_one()

        done = run("ingest", "done", {"source": "gaia-dr3", "table": "gaia_source"}, ingest)
        run("ingest", "failed", {"source": "gaia-dr3", "table": "gaia_source"}, [{**ingest[0], "path": "/d/x.csv"}])
        train = run("train", "done", {})
        conn.execute(sa.text("insert into cnn_model (model_id, path, config, training_rows, training_checksum, "
                             "code_version, metrics, run_id) values ('m1', '/m', '{}', 1, 'c', '0', '{}', :r), "
                             "('m2', '/m', '{}', 1, 'c', '0', '{}', :r)"), {"r": train})
        run("predict", "done", {"model_id": "m1"}, counts={"predicted": 7})
        newest_m1 = run("predict", "done", {"model_id": "m1"}, counts={"predicted": 8})
        run("predict", "failed", {"model_id": "m2"})
        run("predict", "done", {"model_id": "gone"}, counts={"predicted": 1})  # a model since deleted
    migrate.upgrade(engine, "0019")
    with engine.connect() as conn:
        files = [tuple(r) for r in conn.execute(sa.text(
            "select run_id, path, sha256, size, source, table_name, rows from ingested_file"))]
        predicted = [tuple(r) for r in conn.execute(sa.text("select model_id, run_id, row_count from prediction_run"))]
        newest = newest_predicted_model(conn)
    assert files == [(done, "/d/gaia.csv", "aa", 10, "gaia-dr3", "gaia_source", 5)]
    assert predicted == [("m1", newest_m1, 8)]
    assert newest == "m1"
    migrate.downgrade(engine, "0016")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select to_regclass('ingested_file'), to_regclass('prediction_run')")).one() == (
            None, None)
