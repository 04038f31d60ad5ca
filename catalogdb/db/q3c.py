"""The q3c layer: the q3c extension where the server has it, catalogdb's compatible SQL functions elsewhere."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogdb.errors import CatalogdbError

# The newest compat version, sql/q3c_compat/v<N>.sql; a new version is a new file and a migration that installs it.
COMPAT_VERSION = 2

MODES = ("auto", "extension", "compat")


class Q3CUnavailable(CatalogdbError):
    """The q3c extension was asked for but this server cannot provide it."""


def compat_sql() -> str:
    """Text of the SQL script that installs the compat functions."""
    return resources.files("catalogdb.db").joinpath(f"sql/q3c_compat/v{COMPAT_VERSION}.sql").read_text(encoding="utf-8")


def _extension_available(conn: Connection) -> bool:
    return bool(conn.execute(sa.text("select count(*) from pg_available_extensions where name = 'q3c'")).scalar())


def _extension_installed(conn: Connection) -> str | None:
    return conn.execute(sa.text("select extversion from pg_extension where extname = 'q3c'")).scalar()


def install_compat(conn: Connection) -> None:
    """Create or upgrade the compat q3c functions in the connection's database."""
    if _extension_installed(conn):
        raise RuntimeError(
            "the q3c extension is installed in this database; the compat functions would clash with it "
            "(drop the extension first or use --q3c extension)"
        )
    schema = conn.execute(sa.text("select quote_ident(current_schema())")).scalar()
    if schema is None:
        raise RuntimeError("no current schema to install the q3c compat functions into (check search_path)")
    conn.exec_driver_sql(compat_sql().replace("@extschema@", schema))


def drop_compat(conn: Connection) -> None:
    """Drop every compat q3c function (leaves the q3c extension alone)."""
    if _extension_installed(conn):
        return
    rows = conn.execute(
        sa.text(
            "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where p.proname like 'q3c%' and n.nspname = current_schema() "
            "and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')"
        )
    ).scalars()
    for sig in list(rows):
        conn.exec_driver_sql(f"drop function if exists {sig} cascade")


def ensure(conn: Connection, mode: str = "auto") -> str:
    """Make q3c functions available in `mode` (auto, extension or compat); return the active mode."""
    if mode not in MODES:
        raise ValueError(f"q3c mode must be one of {', '.join(MODES)}, not {mode!r}")
    installed = _extension_installed(conn)
    if mode == "compat":
        install_compat(conn)
        return "compat"
    if installed:
        return "extension"
    if _extension_available(conn):
        conn.exec_driver_sql("create extension if not exists q3c")
        return "extension"
    if mode == "extension":
        major = conn.execute(sa.text("select current_setting('server_version_num')::int / 10000")).scalar()
        raise Q3CUnavailable(
            f"the q3c extension is not available on this server (install postgresql-{major}-q3c) — use --q3c compat"
        )
    install_compat(conn)
    return "compat"


def active(conn: Connection) -> tuple[str, str] | None:
    """("extension", version) or ("compat", version) for the q3c in use here, or None when there is none."""
    installed = _extension_installed(conn)
    if installed:
        return ("extension", str(installed))
    has = conn.execute(
        sa.text("select count(*) from pg_proc where proname = 'q3c_compat_version' and pronargs = 0")
    ).scalar()
    if not has:
        return None
    version = conn.execute(sa.text("select q3c_compat_version()")).scalar()
    return ("compat", str(version))
