"""Provenance: every ingest, crossmatch, training and prediction run leaves a row in `run`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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
