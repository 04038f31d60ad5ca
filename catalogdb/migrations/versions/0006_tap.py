"""The TAP service: TAP_SCHEMA, UWS jobs and the read-only role.

The role `catalogdb_reader` is cluster-wide: created once, kept on downgrade (other databases may use it);
this database's grants to it are revoked on downgrade.

Frozen: TAP_SCHEMA's tables are catalogdb/db/sql/tap_schema/v1.sql (never edited once released), created
empty: `catalogdb db init` fills them from the declarations. This migration imports nothing of catalogdb.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TAP_SCHEMA_SQL = Path(__file__).resolve().parents[2] / "db" / "sql" / "tap_schema" / "v1.sql"
READER = "catalogdb_reader"
PUBLISHED = ["public.final_catalog", "public.lamost_star", "public.gaia_source", "public.gaia_distance",
             "public.apogee_star", "public.xmatch_lamost_gaia", "public.xmatch_lamost_apogee", "public.cnn_prediction",
             "tap_schema.schemas", "tap_schema.tables", "tap_schema.columns", "tap_schema.keys",
             "tap_schema.key_columns"]

# The role is cluster-wide, so created once; the owner switches to it (SET ROLE) where it cannot log in as it,
# and superusers need no grant.
GRANT_READER = f"""
DO $$ BEGIN
    CREATE ROLE {READER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$ BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        GRANT {READER} TO CURRENT_USER;
    END IF;
EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN NULL;
END $$;
DO $$ BEGIN EXECUTE 'GRANT CONNECT ON DATABASE ' || quote_ident(current_database()) || ' TO {READER}'; END $$;
GRANT USAGE ON SCHEMA public, tap_schema TO {READER};
GRANT SELECT ON {", ".join(PUBLISHED)} TO {READER}"""

REVOKE_READER = f"""
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
        REVOKE ALL ON {", ".join(PUBLISHED)} FROM {READER};
        REVOKE ALL ON SCHEMA public FROM {READER};
        EXECUTE 'REVOKE ALL ON DATABASE ' || quote_ident(current_database()) || ' FROM {READER}';
    END IF;
END $$"""

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
    for statement in UWS:
        op.execute(statement)
    op.get_bind().exec_driver_sql(TAP_SCHEMA_SQL.read_text(encoding="utf-8"))
    op.get_bind().exec_driver_sql(GRANT_READER)


def downgrade() -> None:
    op.get_bind().exec_driver_sql(REVOKE_READER)
    op.execute("DROP TABLE tap_job_result")
    op.execute("DROP TABLE tap_job")
    op.execute("DROP SCHEMA tap_schema CASCADE")
