"""The TAP service: TAP_SCHEMA (filled from schema.py and views.py), UWS jobs and the read-only role.

The role `catalogdb_reader` is cluster-wide: created once, kept on downgrade (other databases may use it);
this database's grants to it are revoked on downgrade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from catalogdb.tap import published

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UWS = [
    """
CREATE TABLE tap_job (
    job_id text PRIMARY KEY,
    run_id text,
    owner text,
    phase text NOT NULL DEFAULT 'PENDING',
    query text NOT NULL,
    parameters jsonb NOT NULL DEFAULT '{}',
    maxrec bigint,
    response_format text NOT NULL DEFAULT 'votable',
    creation_time timestamptz NOT NULL DEFAULT now(),
    start_time timestamptz,
    end_time timestamptz,
    execution_duration integer NOT NULL,
    destruction timestamptz NOT NULL,
    error_message text,
    row_count bigint,
    overflow boolean,
    content_type text
)""",
    "CREATE INDEX tap_job_phase_idx ON tap_job (phase)",
    "CREATE INDEX tap_job_destruction_idx ON tap_job (destruction)",
    "COMMENT ON TABLE tap_job IS 'TAP asynchronous (UWS) jobs: parameters, phase, times and error'",
    """
CREATE TABLE tap_job_result (
    job_id text NOT NULL REFERENCES tap_job ON DELETE CASCADE,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
)""",
    "COMMENT ON TABLE tap_job_result IS 'Results of TAP jobs, in chunks of at most a few MB, in order of seq'",
]


def upgrade() -> None:
    for statement in UWS + published.tap_schema_ddl():
        op.execute(statement)
    published.refresh(op.get_bind())


def downgrade() -> None:
    published.revoke_reader(op.get_bind())
    op.execute("DROP TABLE tap_job_result")
    op.execute("DROP TABLE tap_job")
    op.execute(f"DROP SCHEMA {published.PG_TAP_SCHEMA} CASCADE")
