"""The final catalogue view (Table D.1 of Shen & Luo 2024) with percentiles and X, Y, Z, R.

Frozen: the view and its comments are catalogdb/db/sql/views/final_catalog/v1.sql (never edited once released);
this migration imports nothing of catalogdb.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

VIEW_SQL = Path(__file__).resolve().parents[2] / "db" / "sql" / "views" / "final_catalog" / "v1.sql"


def upgrade() -> None:
    op.get_bind().exec_driver_sql(VIEW_SQL.read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute("DROP VIEW final_catalog")
