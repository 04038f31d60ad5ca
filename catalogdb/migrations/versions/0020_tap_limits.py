"""TAP limits that hold (issue 21): temporary disk of the reader role, result bytes, interrupted jobs.

- The reader role gets temp_file_limit in this database (ALTER ROLE ... IN DATABASE), so a query that sorts
  or hashes beyond it fails instead of filling the disk. Setting it needs a superuser (or, from PostgreSQL
  15, the SET privilege on temp_file_limit); an owner without either gets a WARNING and no limit.
- tap_result_bytes(row, row cap, result cap) is called for every row of a TAP result: it counts the bytes
  of the result so far in the transaction (a transaction-local custom setting) and raises, with a message
  for the astronomer, when a row or the whole result is larger than its cap. The caps come from the
  service's configuration at each call.
- tap_job.attempts counts the starts of a job, so a job that a server stop interrupted twice ends in ERROR
  instead of running again at every start.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

READER = "catalogdb_reader"
TEMP_FILE_LIMIT = "2GB"  # per query's temporary files (sorts, hashes) of the reader role

SET_TEMP_FILE_LIMIT = f"""
DO $$ BEGIN
    EXECUTE 'ALTER ROLE {READER} IN DATABASE ' || quote_ident(current_database())
            || ' SET temp_file_limit = ' || quote_literal('{TEMP_FILE_LIMIT}');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'only a superuser can set temp_file_limit for {READER}: its temporary disk stays unlimited';
END $$"""

RESET_TEMP_FILE_LIMIT = f"""
DO $$ BEGIN
    EXECUTE 'ALTER ROLE {READER} IN DATABASE ' || quote_ident(current_database()) || ' RESET temp_file_limit';
EXCEPTION WHEN insufficient_privilege OR undefined_object THEN NULL;
END $$"""

RESULT_BYTES = r"""
CREATE FUNCTION tap_result_bytes(row_bytes bigint, row_cap bigint, result_cap bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    total bigint := coalesce(nullif(current_setting('catalogdb.tap_result_bytes', true), ''), '0')::bigint
                    + row_bytes;
BEGIN
    IF row_bytes > row_cap THEN
        RAISE EXCEPTION 'a row of the result has % bytes, more than the limit of % bytes per row',
            row_bytes, row_cap USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF total > result_cap THEN
        RAISE EXCEPTION 'the result is larger than the limit of % bytes: ask for fewer rows (MAXREC, TOP) '
            'or fewer columns', result_cap USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM set_config('catalogdb.tap_result_bytes', total::text, true);
    RETURN true;
END $$"""


def upgrade() -> None:
    op.get_bind().exec_driver_sql(SET_TEMP_FILE_LIMIT)
    op.execute(RESULT_BYTES)
    op.execute("COMMENT ON FUNCTION tap_result_bytes(bigint, bigint, bigint) IS "
               "'TAP: raises when a result row or the result so far (this transaction) is larger than its cap'")
    op.execute("ALTER TABLE tap_job ADD COLUMN attempts integer NOT NULL DEFAULT 0")
    op.execute("COMMENT ON COLUMN tap_job.attempts IS 'how many times a server started the job'")


def downgrade() -> None:
    op.execute("ALTER TABLE tap_job DROP COLUMN attempts")
    op.execute("DROP FUNCTION tap_result_bytes(bigint, bigint, bigint)")
    op.get_bind().exec_driver_sql(RESET_TEMP_FILE_LIMIT)
