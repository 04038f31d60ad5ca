"""Released empty (a placeholder): does nothing. TAP uploads came in 0018, TAP limits in 0020.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op  # noqa: F401

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
