"""Provenance: every ingest, crossmatch, training and prediction run leaves a row in `run`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalogdb import __version__


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def start(conn: Connection, command: str, parameters: dict, inputs: list[dict] | None = None) -> int:
    """Insert a run row with status 'running' and return its run_id."""
    return conn.execute(
        sa.text("insert into run (command, parameters, inputs, code_version) "
                "values (:command, cast(:parameters as jsonb), cast(:inputs as jsonb), :version) returning run_id"),
        {"command": command, "parameters": json.dumps(parameters, default=str),
         "inputs": json.dumps(inputs or [], default=str), "version": __version__},
    ).scalar_one()


def finish(conn: Connection, run_id: int, row_counts: dict, status: str = "done",
           inputs: list[dict] | None = None) -> None:
    """Record a run's row counts, end time and status (and its inputs when known only at the end)."""
    conn.execute(
        sa.text("update run set row_counts = cast(:counts as jsonb), status = :status, finished_at = now(), "
                "inputs = coalesce(cast(:inputs as jsonb), inputs) where run_id = :run_id"),
        {"counts": json.dumps(row_counts), "status": status, "run_id": run_id,
         "inputs": None if inputs is None else json.dumps(inputs, default=str)},
    )


@dataclass
class Run:
    """The run being recorded: the caller sets row_counts (and inputs known only at the end)."""

    run_id: int
    row_counts: dict = field(default_factory=dict)
    inputs: list[dict] | None = None
    finished: bool = False

    def finish(self, conn: Connection) -> None:
        """Mark the run done inside the caller's last transaction, so its end commits with the last writes."""
        finish(conn, self.run_id, self.row_counts, inputs=self.inputs)
        self.finished = True


@contextmanager
def recorded(target: Connection | Engine, command: str, parameters: dict,
             inputs: list[dict] | None = None) -> Iterator[Run]:
    """Record a run around a block of work: 'done' when it ends, 'failed' (then re-raised) when it raises.

    With an Engine the run row is committed at once (visible as 'running' while the work goes on) and its
    end is written in a transaction of its own, unless the block calls `run.finish(conn)` in its last
    transaction. With a Connection the row is part of that connection's transaction, committed or rolled
    back with the work; a failure is then recorded as a new 'failed' row in a separate transaction, so
    it survives the rollback.
    """
    if isinstance(target, Engine):
        with target.begin() as conn:
            run = Run(start(conn, command, parameters, inputs))
    else:
        run = Run(start(target, command, parameters, inputs))
    try:
        yield run
    except BaseException as exc:
        try:
            _record_failure(target, run, command, parameters, inputs)
        except Exception as lost:  # noqa: BLE001 - the work's own error is the one to raise
            exc.add_note(f"(run {run.run_id} could not be marked failed: {lost})")
        raise
    if run.finished:
        return
    if isinstance(target, Engine):
        with target.begin() as conn:
            run.finish(conn)
    else:
        run.finish(target)


def _record_failure(target: Connection | Engine, run: Run, command: str, parameters: dict,
                    inputs: list[dict] | None) -> None:
    if isinstance(target, Engine):
        with target.begin() as conn:
            finish(conn, run.run_id, run.row_counts, "failed", run.inputs)
        return
    with target.engine.begin() as conn:  # the caller's transaction (and its run row) is being rolled back
        failed = start(conn, command, parameters, run.inputs or inputs)
        finish(conn, failed, run.row_counts, "failed")
    run.run_id = failed
