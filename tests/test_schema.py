"""Drift between the declarations and what is built from them: the database, TAP_SCHEMA and the ingest specs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from catalogdb.db import admin, published, views
from catalogdb.db.catalogues import SQL_TYPES, catalogue, sources
from catalogdb.db.schema import metadata
from catalogdb.ingest.spec import load_spec
from conftest import create_database

# SQLAlchemy type -> PostgreSQL format_type(), for the tables the migrations create.
PG_TYPES = {sa.BigInteger: "bigint", sa.SmallInteger: "smallint", sa.Integer: "integer", sa.Double: "double precision",
            sa.REAL: "real", sa.Text: "text", sa.Date: "date", sa.Boolean: "boolean", sa.LargeBinary: "bytea",
            sa.DateTime: "timestamp with time zone"}


def _pg_type(column: sa.Column) -> str:
    for cls, name in PG_TYPES.items():  # subclasses first: BigInteger and SmallInteger are Integers
        if isinstance(column.type, cls):
            return name
    return "jsonb"


@pytest.fixture(scope="module")
def engine(embedded_server):
    eng = sa.create_engine(create_database(embedded_server, "schema"))
    admin.init(eng, "compat")
    yield eng
    eng.dispose()


def _columns(conn, table: str) -> list[tuple[str, str, bool]]:
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a "
        "WHERE a.attrelid = cast(:t as regclass) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"),
        {"t": table})]


def test_the_migrations_build_every_declared_table_as_declared(engine):
    with engine.connect() as conn:
        for table in metadata.tables.values():
            built = {name: (pg_type, not_null) for name, pg_type, not_null in _columns(conn, table.name)}
            declared = {c.name: (_pg_type(c), not c.nullable) for c in table.columns}
            assert built == declared, table.name


# Tables the migrations make that are not in schema.py: final_catalog (its columns are views.FINAL_CATALOG),
# the migration log and the TAP service's own job store.
NOT_IN_SCHEMA = {"alembic_version", "final_catalog", "tap_job", "tap_job_result", "tap_job_upload"}


def test_every_table_in_the_database_is_declared(engine):
    with engine.connect() as conn:
        tables = set(conn.execute(sa.text("SELECT table_name FROM information_schema.tables "
                                          "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")).scalars())
    assert tables - NOT_IN_SCHEMA == set(metadata.tables)


def test_every_published_column_has_its_declared_unit_and_ucd(engine):
    declared = {}
    for t in published.published_tables():
        declared |= {(t.name, c.name): (c.info["unit"], c.info["ucd"]) for c in t.columns}
    for c in views.FINAL_CATALOG:  # inherited from the column it copies, unless computed
        src = metadata.tables[c.source.split(".")[0]].columns[c.source.split(".")[1]] if c.source else None
        declared[("final_catalog", c.name)] = (c.unit, c.ucd) if src is None else (src.info["unit"], src.info["ucd"])
    with engine.connect() as conn:
        served = {(t, c): (unit, ucd) for t, c, unit, ucd in conn.execute(sa.text(
            "SELECT table_name, column_name, unit, ucd FROM tap_schema.columns "
            "WHERE table_name NOT LIKE 'TAP_SCHEMA.%'"))}
    assert served == declared
    # the drift that #20 found: one quantity published with two UCDs
    assert served[("final_catalog", "cnn_bprp")] == served[("cnn_prediction", "cnn_bprp")] == ("mag", "phot.color")


def test_final_catalog_columns_copy_the_columns_they_name(engine):
    with engine.connect() as conn:
        built = _columns(conn, "final_catalog")
        assert [name for name, _, _ in built] == [c.name for c in views.FINAL_CATALOG]
        for (name, pg_type, _), c in zip(built, views.FINAL_CATALOG, strict=True):
            if c.source is not None:  # the same PostgreSQL type as the source: a wrong source would show here
                table, column = c.source.split(".")
                assert pg_type == _pg_type(metadata.tables[table].columns[column]), name


def test_no_override_repeats_what_it_inherits():
    for c in views.FINAL_CATALOG:
        if c.source is None:
            assert c.unit is not None or c.ucd is not None, c.name
            continue
        table, column = c.source.split(".")
        assert c.unit is None and c.ucd is None, f"{c.name}: unit and UCD are inherited, never restated"
        assert c.description != metadata.tables[table].columns[column].comment, f"{c.name} restates its description"


def test_foreign_keys_are_declared_with_the_tables_and_published(engine):
    with engine.connect() as conn:
        keys = set(conn.execute(sa.text(
            "SELECT k.from_table, k.target_table, c.from_column, c.target_column FROM tap_schema.keys k "
            "JOIN tap_schema.key_columns c USING (key_id) WHERE k.from_table NOT LIKE 'TAP_SCHEMA.%'")).all())
    assert ("gaia_distance", "gaia_source", "source_id", "source_id") in keys  # from bailer-jones.toml
    assert ("final_catalog", "gaia_source", "gaia_source_id", "source_id") in keys  # from views.py
    assert ("xmatch_lamost_apogee", "apogee_star", "telescope", "telescope") in keys  # from schema.py
    for _, target, _, target_column in keys:
        assert target_column in metadata.tables[target].columns


def test_each_catalogue_file_declares_every_column_once_with_its_metadata():
    for source in sources():
        cat = catalogue(source)
        assert cat.comment and cat.key
        for c in cat.columns:
            assert c.type in SQL_TYPES and c.description, f"{source}: {c.name}"
        spec = load_spec(source)
        assert [c.name for c in spec.columns] == [c.name for c in cat.columns if c.ingest]
    # the file's unit is what the ingest expects; the table stores the declared unit (StarHorse: kpc -> pc)
    starhorse = {c.name: c for c in load_spec("starhorse").columns}
    assert starhorse["dist50_pc"].unit == "kpc" and metadata.tables["apogee_starhorse"].c.dist50_pc.info["unit"] == "pc"
