"""Database fixtures: the embedded server and a system PostgreSQL 15 with the real q3c extension."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalogdb.config import Settings
from catalogdb.db.cluster import start_cluster
from catalogdb.db.server import server_url, stop_embedded

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = Path(os.environ.get("CATALOGDB_FIXTURES", SHARED / "fixtures"))
REQUIRE_Q3C = os.environ.get("CATALOGDB_REQUIRE_Q3C") == "1"


def create_database(server: str, prefix: str = "t") -> str:
    """Create a new empty database on the server behind `server` (a URL) and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    eng.dispose()
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory) -> Path:
    """A CATALOGDB_HOME whose embedded server serves the whole session."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def embedded_server(embedded_home) -> str:
    """URL of the `postgres` database of the session's embedded PostgreSQL 18 (stopped at the end)."""
    cfg = Settings(url=None, home=embedded_home)
    yield server_url(cfg)
    stop_embedded(cfg)


@pytest.fixture(scope="session")
def pg15_server() -> str:
    """URL of the `postgres` database of a temporary PostgreSQL 15 cluster with the q3c extension."""
    try:
        cluster = start_cluster()
    except Exception as exc:  # noqa: BLE001 - any start failure means no real-q3c server here
        if REQUIRE_Q3C:
            pytest.fail(f"CATALOGDB_REQUIRE_Q3C=1 but PostgreSQL 15 could not start: {exc}")
        pytest.skip(f"no system PostgreSQL 15: {exc}")
    url = cluster.url()
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        has_q3c = conn.execute(sa.text("select count(*) from pg_available_extensions where name='q3c'")).scalar()
    eng.dispose()
    if not has_q3c:
        cluster.stop()
        if REQUIRE_Q3C:
            pytest.fail("CATALOGDB_REQUIRE_Q3C=1 but the q3c extension is not installed (postgresql-15-q3c)")
        pytest.skip("q3c extension not installed")
    yield url
    cluster.stop()


@pytest.fixture(params=["embedded", "pg15"])
def any_server(request) -> str:
    """Each server kind in turn."""
    return request.getfixturevalue("embedded_server" if request.param == "embedded" else "pg15_server")
