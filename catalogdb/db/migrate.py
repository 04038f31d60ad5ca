"""Alembic migrations run from catalogdb: upgrade, downgrade, current revision."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from catalogdb.config import ALEMBIC_INI


def alembic_config(engine: Engine, connection: Connection | None = None) -> Config:
    """The packaged Alembic Config (catalogdb/alembic.ini), pointed at this engine."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the schema up to `revision`."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(engine, conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the schema down to `revision` (base drops everything catalogdb made)."""
    with engine.begin() as conn:
        command.downgrade(alembic_config(engine, conn), revision)


def current(engine: Engine) -> str | None:
    """The database's schema revision, None before the first migration."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str | None:
    """The newest revision in catalogdb/migrations/."""
    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
