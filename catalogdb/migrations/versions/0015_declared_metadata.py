"""Released empty (a placeholder): does nothing. Column metadata is declared per catalogue (catalogdb/sources/).

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op  # noqa: F401

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
