"""Database fixtures: the embedded server and a system PostgreSQL 15 with the real q3c extension."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalogdb.config import Settings
from catalogdb.db.cluster import start_cluster
from catalogdb.db.server import server_url, stop_embedded

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # real survey files, see fixtures/README.md
# CI sets CATALOGDB_REQUIRE_TOOLS=1: there a missing system tool (PostgreSQL 15 + q3c, STILTS, chromium)
# fails its tests instead of skipping them, so no skip hides a feature in CI.
REQUIRE_TOOLS = os.environ.get("CATALOGDB_REQUIRE_TOOLS") == "1"


def require(available: bool, what: str) -> None:
    """Skip the test (fail it under CATALOGDB_REQUIRE_TOOLS=1) when the system tool `what` is missing."""
    if available:
        return
    if REQUIRE_TOOLS:
        pytest.fail(f"CATALOGDB_REQUIRE_TOOLS=1 but {what}")
    pytest.skip(what)


def create_database(server: str, prefix: str = "t") -> str:
    """Create a new empty database on the server behind `server` (a URL) and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    eng.dispose()
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def embedded_home() -> Path:
    """A CATALOGDB_HOME whose embedded server serves the whole session.

    Outside pytest's own temporary root: every pytest session run as root narrows that root to mode 0700, which
    would lock out the embedded server's `pgserver` user of any other session running at the same time.
    """
    home = Path(tempfile.mkdtemp(prefix="catalogdb-test-home-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


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
        require(False, f"no system PostgreSQL 15 could start: {exc}")
    url = cluster.url()
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        has_q3c = conn.execute(sa.text("select count(*) from pg_available_extensions where name='q3c'")).scalar()
    eng.dispose()
    if not has_q3c:
        cluster.stop()
        require(False, "the q3c extension is not installed (Debian package postgresql-15-q3c)")
    yield url
    cluster.stop()


@pytest.fixture(params=["embedded", "pg15"])
def any_server(request) -> str:
    """Each server kind in turn."""
    return request.getfixturevalue("embedded_server" if request.param == "embedded" else "pg15_server")


TRAINED_MOCK_STARS = 1500  # with half of them in APOGEE: ~330 training spectra (~70 test rows)


def _trained_mock_database(server: str, home: str) -> tuple[str, str]:
    """A database with the mock survey ingested, crossmatched and a small CNN trained: (url, model_id).

    Built once per test session (fixture `trained_mock`).
    """
    from catalogdb.cnn.train import train_model
    from catalogdb.db import admin
    from catalogdb.ingest.files import ingest_files
    from catalogdb.mock import CATALOGUE_FILES, SPECTRA_DIR, write_survey
    from catalogdb.spectra_store import ingest_spectra
    from catalogdb.xmatch import run_xmatch

    survey = Path(home) / "survey"
    write_survey(survey, stars=TRAINED_MOCK_STARS, seed=3, spectra="training", apogee_fraction=0.5)
    url = create_database(server, "explain")
    engine = sa.create_engine(url)
    admin.init(engine, "compat")
    for source, path in CATALOGUE_FILES.items():
        ingest_files(engine, source, [survey / path])
    ingest_spectra(engine, [survey / SPECTRA_DIR], workers=1)
    run_xmatch(engine)
    model = train_model(engine, max_steps=900, batch_size=8, folds=1, width_scale=0.1, seed=1,
                        models_dir=Path(home) / "models")
    engine.dispose()
    return url, model["model_id"]


@pytest.fixture(scope="session")
def trained_mock(embedded_server, tmp_path_factory):
    """(engine, model_id) of the mock database with a small trained CNN, shared by explain and baselines."""
    url, model_id = _trained_mock_database(embedded_server, str(tmp_path_factory.getbasetemp() / "explain_mock"))
    engine = sa.create_engine(url)
    yield engine, model_id
    engine.dispose()
