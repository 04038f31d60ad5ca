"""The q3c layer: the extension when `db init` created it, otherwise catalogdb's compatible functions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from catalogdb.db import q3c

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `catalogdb db init --q3c ...` has already chosen; a bare `upgrade` falls back to compat.
    conn = op.get_bind()
    if q3c.active(conn) is None:
        q3c.install_compat(conn)


def downgrade() -> None:
    conn = op.get_bind()
    state = q3c.active(conn)
    if state is not None and state[0] == "compat":
        q3c.drop_compat(conn)
