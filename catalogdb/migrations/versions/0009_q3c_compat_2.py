"""Re-install catalogdb's q3c functions (compat version 2: a shorter range-bound function) where active.

Frozen: reads catalogdb/db/sql/q3c_compat/v2.sql (never edited once released) and imports nothing of catalogdb.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COMPAT = Path(__file__).resolve().parents[2] / "db" / "sql" / "q3c_compat" / "v2.sql"

COMPAT_ACTIVE = """SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'q3c')
    AND EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'q3c_compat_version' AND pronargs = 0)"""


def upgrade() -> None:
    conn = op.get_bind()
    if conn.exec_driver_sql(COMPAT_ACTIVE).scalar():
        schema = conn.exec_driver_sql("SELECT quote_ident(current_schema())").scalar()
        conn.exec_driver_sql(COMPAT.read_text(encoding="utf-8").replace("@extschema@", schema))


def downgrade() -> None:
    pass  # version 2 computes the same ranges; keeping it is harmless
