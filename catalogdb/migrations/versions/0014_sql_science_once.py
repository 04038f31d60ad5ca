"""Released empty (a placeholder): does nothing. The cuts and gradient bins moved into SQL in 0017.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op  # noqa: F401

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
