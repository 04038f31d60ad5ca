"""`catalogdb db ...`: initialise, migrate and describe the database."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.db import migrate, published, q3c
from catalogdb.db.schema import metadata
from catalogdb.db.server import describe


def init(engine: Engine, q3c_mode: str = "auto") -> str:
    """Install q3c (extension or compat) and migrate to head; returns the active q3c mode."""
    with engine.begin() as conn:
        mode = q3c.ensure(conn, q3c_mode)
    upgrade(engine)
    return mode


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to `revision`; at head, TAP_SCHEMA and the read-only role's grants follow the declarations."""
    migrate.upgrade(engine, revision)
    if migrate.current(engine) == migrate.head():
        with engine.begin() as conn:
            published.refresh(conn)


@dataclass
class Status:
    """What `catalogdb db status` prints."""

    server: str
    version: str
    q3c: str
    revision: str | None
    head: str | None
    rows: dict[str, int]


def status(engine: Engine) -> Status:
    """Server, PostgreSQL version, q3c mode, schema revision and row counts."""
    with engine.connect() as conn:
        version = conn.execute(sa.text("show server_version")).scalar_one()
        state = q3c.active(conn)
        existing = set(sa.inspect(conn).get_table_names())
        rows = {
            name: conn.execute(sa.text(f'select count(*) from "{name}"')).scalar_one()
            for name in metadata.tables
            if name in existing
        }
    q3c_text = f"{state[0]} {state[1]}" if state else "not installed"
    return Status(describe(str(engine.url.render_as_string(hide_password=False))), version, q3c_text,
                  migrate.current(engine), migrate.head(), rows)
