"""Released empty (a placeholder): does nothing. The ingested_file table came in 0019.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op  # noqa: F401

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
