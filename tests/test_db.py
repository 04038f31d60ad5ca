"""Foundation: migrations on both servers, q3c modes, status, errors, the embedded server's lifecycle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from catalogdb.db import admin, migrate
from catalogdb.db.schema import metadata
from conftest import create_database

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "catalogdb.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=ROOT, timeout=300)


def insert_rows(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("insert into lamost_star (obsid, ra, dec, teff) values (1, 10, 20, 5800)"))
        conn.execute(sa.text("insert into gaia_source (source_id, ra, dec, parallax) values (42, 10, 20, 1.5)"))
        conn.execute(sa.text("insert into apogee_star (apogee_id, telescope, field, ra, dec) "
                             "values ('2M00400000+2000000', 'apo25m', 'f', 10, 20)"))
        conn.execute(sa.text("insert into run (command, code_version) values ('test', '0')"))


@pytest.mark.parametrize("q3c_mode", ["auto", "compat"])
def test_upgrade_downgrade_upgrade_with_rows(any_server, q3c_mode):
    engine = sa.create_engine(create_database(any_server))
    mode = admin.init(engine, q3c_mode)
    on_pg15 = "127.0.0.1" in any_server
    assert mode == ("extension" if on_pg15 and q3c_mode == "auto" else "compat")
    assert migrate.current(engine) == migrate.head()
    insert_rows(engine)
    with engine.connect() as conn:
        near = conn.execute(sa.text(
            "select count(*) from lamost_star l join gaia_source g on q3c_join(l.ra, l.dec, g.ra, g.dec, 1/3600.)"
        )).scalar_one()
    assert near == 1

    migrate.downgrade(engine, "base")
    with engine.connect() as conn:
        left = set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
        functions = conn.execute(sa.text("select count(*) from pg_proc where proname = 'q3c_ang2ipix'")).scalar()
    assert left == set()
    assert (functions > 0) == (mode == "extension")  # compat functions belong to the migration

    migrate.upgrade(engine)
    insert_rows(engine)
    st = admin.status(engine)
    assert st.revision == st.head
    assert st.rows["lamost_star"] == 1 and st.rows["apogee_star"] == 1
    assert st.q3c.startswith(mode)
    engine.dispose()


def test_every_column_has_unit_ucd_and_description():
    for table in metadata.tables.values():
        for column in table.columns:
            assert column.comment, f"{table.name}.{column.name} has no description"
            assert "unit" in column.info and "ucd" in column.info, f"{table.name}.{column.name}"


def test_extension_mode_fails_clearly_without_q3c(embedded_server):
    url = create_database(embedded_server)
    result = run_cli("db", "init", "--q3c", "extension", env={"CATALOGDB_URL": url})
    assert result.returncode != 0
    assert "q3c" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_unreachable_server_is_one_clear_line():
    result = run_cli("db", "status", env={"CATALOGDB_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot connect" in lines[0] and "127.0.0.1" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_two_commands_at_once_share_one_embedded_server(tmp_path):
    env = {**os.environ, "CATALOGDB_HOME": str(tmp_path / "home")}
    env.pop("CATALOGDB_URL", None)
    procs = [subprocess.Popen([*CLI, "db", "status"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    try:
        assert [p.returncode for p in procs] == [0, 0], outputs
        pgdata = tmp_path / "home" / "pgdata"
        servers = subprocess.run(["pgrep", "-f", f"postgres -D {pgdata}"], capture_output=True, text=True)
        pid = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        assert servers.stdout.split() == [pid]
        assert all("postgres:  18" in out for out, _ in outputs)
    finally:
        stopped = subprocess.run([*CLI, "db", "stop"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert "stopped" in stopped.stdout


def test_docker_compose_names_db_with_q3c_and_api():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db, api = compose["services"]["db"], compose["services"]["api"]
    assert "FROM postgres:16" in db["build"]["dockerfile_inline"]
    assert "postgresql-16-q3c" in db["build"]["dockerfile_inline"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["volumes"][0].split(":")[0] in compose["volumes"]
    assert "catalogdb serve" in api["command"]
    image = api["build"]["dockerfile_inline"]  # the wheel, not an editable checkout
    assert "pip wheel" in image and "/dist/catalogdb-*.whl" in image and "-e ." not in image
    assert "-c /tmp/constraints.txt" in image and (ROOT / "constraints.txt").exists()
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["environment"]["CATALOGDB_URL"].startswith("postgresql://")
