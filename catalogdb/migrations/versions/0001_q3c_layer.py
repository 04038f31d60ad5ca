"""The q3c layer: the extension when `db init` created it, otherwise catalogdb's compatible functions.

Frozen: installs q3c compat version 1 from catalogdb/db/sql/q3c_compat/v1.sql (never edited once released;
0009 installs version 2) and imports nothing of catalogdb.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

COMPAT = Path(__file__).resolve().parents[2] / "db" / "sql" / "q3c_compat" / "v1.sql"

HAS_Q3C = """SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'q3c')
    OR EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'q3c_compat_version' AND pronargs = 0)"""

# Every q3c* function of this schema that no extension owns: the compat functions.
DROP_COMPAT = """
DO $$
DECLARE sig text;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'q3c') THEN RETURN; END IF;
  FOR sig IN SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.proname LIKE 'q3c%' AND n.nspname = current_schema()
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE 'DROP FUNCTION IF EXISTS ' || sig || ' CASCADE';
  END LOOP;
END $$"""


def upgrade() -> None:
    # `catalogdb db init --q3c ...` has already chosen; a bare `upgrade` falls back to compat.
    conn = op.get_bind()
    if conn.exec_driver_sql(HAS_Q3C).scalar():
        return
    schema = conn.exec_driver_sql("SELECT quote_ident(current_schema())").scalar()
    if schema is None:
        raise RuntimeError("no current schema to install the q3c compat functions into (check search_path)")
    conn.exec_driver_sql(COMPAT.read_text(encoding="utf-8").replace("@extschema@", schema))


def downgrade() -> None:
    op.execute(DROP_COMPAT)
