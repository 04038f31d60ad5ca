"""TAP UPLOAD for async jobs: the uploaded VOTables a job was created with, and the service URL it was posted to.

A sync upload never touches these: it becomes a temporary table of the query's own transaction. An async
job may run after a server restart, so its uploads are kept as the bytes the client sent (parsed again
when the job runs) and go with the job (ON DELETE CASCADE). `service_url` is the TAP base URL the job was
created through, so its result can point to the DataLink service of the same host.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE tap_job_upload (
    job_id text NOT NULL REFERENCES tap_job ON DELETE CASCADE,
    name text NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (job_id, name)
)""")
    op.execute("COMMENT ON TABLE tap_job_upload IS 'VOTables uploaded with TAP async jobs (UPLOAD=name,param:part)'")
    op.execute("ALTER TABLE tap_job ADD COLUMN service_url text")
    op.execute("COMMENT ON COLUMN tap_job.service_url IS 'TAP base URL the job was created through'")


def downgrade() -> None:
    op.execute("ALTER TABLE tap_job DROP COLUMN service_url")
    op.execute("DROP TABLE tap_job_upload")
