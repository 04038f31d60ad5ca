"""The final catalogue view (Table D.1 of Shen & Luo 2024) with percentiles and X, Y, Z, R.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from catalogdb.db.views import FINAL_CATALOG_COLUMNS, FINAL_CATALOG_SQL, sql_literal

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(FINAL_CATALOG_SQL)
    op.execute("COMMENT ON VIEW final_catalog IS " + sql_literal(
        "Table D.1 of Shen & Luo (2024): the CNN catalogue of the most recent prediction run, with the "
        "distance percentiles and galactocentric X, Y, Z, R added by catalogdb"))
    for _, name, unit, _, description in FINAL_CATALOG_COLUMNS:
        text = f"[{unit}] {description}" if unit else description
        op.execute(f"COMMENT ON COLUMN final_catalog.{name} IS {sql_literal(text)}")


def downgrade() -> None:
    op.execute("DROP VIEW final_catalog")
