"""Control state out of the run log: ingested_file (what each ingest loaded) and prediction_run (per model).

Before, "is this file already ingested?" was a JSON query over run.inputs, and `catalogdb publish` found
a model's predict run (and the newest predicted model) by JSON queries on run.parameters. From here on:
- ingested_file: one row per file an ingest loaded (path, SHA-256, size, source, table, run, rows read);
  a file is skipped when its checksum was loaded into the same source and its path's newest row agrees;
- prediction_run: one row per model, the predict run whose rows cnn_prediction holds for it.
Both are backfilled from the existing run rows, so an upgraded database keeps knowing what it ingested
and which run predicted each model. The run log stays provenance only.

(0013 is an empty placeholder of the same name that was released empty; it stays as it is.)

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = [
    """
CREATE TABLE ingested_file (
    run_id bigint NOT NULL REFERENCES run (run_id),
    path text NOT NULL,
    sha256 text NOT NULL,
    size bigint NOT NULL,
    source text NOT NULL,
    table_name text NOT NULL,
    rows bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, path)
)""",
    "CREATE INDEX ingested_file_source_sha256_idx ON ingested_file (source, sha256)",
    "CREATE INDEX ingested_file_source_path_idx ON ingested_file (source, path)",
    "COMMENT ON TABLE ingested_file IS 'One row per survey file a catalogdb ingest loaded: a file whose "
    "checksum is here for its source (and whose path''s newest row agrees) is skipped by the next ingest'",
    "COMMENT ON COLUMN ingested_file.run_id IS 'The ingest run that loaded the file'",
    "COMMENT ON COLUMN ingested_file.path IS 'Absolute path of the file when it was loaded'",
    "COMMENT ON COLUMN ingested_file.sha256 IS 'SHA-256 of the file''s bytes'",
    "COMMENT ON COLUMN ingested_file.size IS 'File size in bytes'",
    "COMMENT ON COLUMN ingested_file.source IS 'Ingest source (catalogdb ingest SOURCE)'",
    "COMMENT ON COLUMN ingested_file.table_name IS 'Table the rows went into'",
    "COMMENT ON COLUMN ingested_file.rows IS 'Rows read from the file (inserted, updated, unchanged or rejected)'",
    "COMMENT ON COLUMN ingested_file.ingested_at IS 'When the ingest committed'",
    # What the run log says was loaded: every file of a finished ingest that was not skipped.
    """
INSERT INTO ingested_file (run_id, path, sha256, size, source, table_name, rows, ingested_at)
SELECT r.run_id, f ->> 'path', f ->> 'sha256', (f ->> 'size')::bigint, r.parameters ->> 'source',
       r.parameters ->> 'table', coalesce((f ->> 'read')::bigint, 0), coalesce(r.finished_at, r.started_at)
FROM run r, jsonb_array_elements(r.inputs) f
WHERE r.command = 'ingest' AND r.status = 'done' AND NOT coalesce((f ->> 'skipped')::boolean, false)""",
    """
CREATE TABLE prediction_run (
    model_id text PRIMARY KEY REFERENCES cnn_model (model_id) ON DELETE CASCADE,
    run_id bigint NOT NULL REFERENCES run (run_id),
    row_count bigint NOT NULL,
    predicted_at timestamptz NOT NULL DEFAULT now()
)""",
    "COMMENT ON TABLE prediction_run IS 'One row per model with predictions: the catalogdb predict run whose "
    "rows cnn_prediction holds for it; catalogdb publish names it in release and publishes the newest by default'",
    "COMMENT ON COLUMN prediction_run.model_id IS 'CNN model'",
    "COMMENT ON COLUMN prediction_run.run_id IS 'The predict run that wrote its cnn_prediction rows'",
    "COMMENT ON COLUMN prediction_run.row_count IS 'Rows that run wrote to cnn_prediction'",
    "COMMENT ON COLUMN prediction_run.predicted_at IS 'When those rows were committed'",
    # Each model's newest finished predict run, as publish chose it from the run log before.
    """
INSERT INTO prediction_run (model_id, run_id, row_count, predicted_at)
SELECT DISTINCT ON (m.model_id) m.model_id, r.run_id, coalesce((r.row_counts ->> 'predicted')::bigint, 0),
       coalesce(r.finished_at, r.started_at)
FROM run r JOIN cnn_model m ON m.model_id = r.parameters ->> 'model_id'
WHERE r.command = 'predict' AND r.status = 'done'
ORDER BY m.model_id, r.finished_at DESC NULLS LAST, r.run_id DESC""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE prediction_run")
    op.execute("DROP TABLE ingested_file")
