"""Re-install catalogdb's q3c functions (compat version 2: a shorter range-bound function) where active.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from catalogdb.db import q3c

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    state = q3c.active(conn)
    if state is not None and state[0] == "compat":
        q3c.install_compat(conn)


def downgrade() -> None:
    pass  # version 2 computes the same ranges; keeping it is harmless
