"""What the TAP service publishes, declared once: tables, their columns' metadata and the keys between them.

Units, UCDs and descriptions come from the declarations: `catalogdb.db.schema` (the tables, the survey
catalogues' from their files in catalogdb/sources/) and `catalogdb.db.views` (final_catalog, inherited);
datatypes come from the database itself when TAP_SCHEMA is filled, so a computed column gets the type
PostgreSQL gives it. Only these relations are visible through ADQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogdb.db import schema, views

READER_ROLE = "catalogdb_reader"
"""The cluster-wide PostgreSQL role the TAP service queries as: SELECT on the published relations only."""

TAP_SCHEMA = "TAP_SCHEMA"
"""The schema's name in ADQL; in PostgreSQL it is `tap_schema` (lower case) so unquoted SQL reaches it too."""
PG_TAP_SCHEMA = "tap_schema"


@dataclass(frozen=True)
class Column:
    """One published column with its TAP metadata (datatype filled from the database or declared)."""

    name: str
    unit: str | None
    ucd: str | None
    description: str
    datatype: str | None = None
    arraysize: str | None = None
    xtype: str | None = None
    principal: bool = False
    indexed: bool = False
    std: bool = False

    @property
    def bare(self) -> str:
        """The name without ADQL delimiters (`"size"` -> size): the PostgreSQL column name."""
        return self.name.strip('"')


@dataclass(frozen=True)
class Table:
    """One published table or view: its TAP name, PostgreSQL location and columns."""

    schema: str  # TAP schema name
    name: str  # TAP table name (what ADQL writes and TAP_SCHEMA.tables lists)
    pg_schema: str
    pg_name: str
    description: str
    table_type: str
    columns: tuple[Column, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Key:
    """A foreign key between published tables (TAP_SCHEMA.keys and key_columns)."""

    key_id: str
    from_table: str
    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str


SCHEMA_DESCRIPTIONS = {
    "public": "catalogdb: the CNN catalogue of Shen & Luo (2024) and the survey tables it was built from",
    TAP_SCHEMA: "Metadata of this TAP service (IVOA TAP 1.1)",
}

# TAP_SCHEMA's own keys; the catalogue's come from the declarations (published_keys).
TAP_SCHEMA_KEYS = (
    Key("tap_tables_schema", "TAP_SCHEMA.tables", "TAP_SCHEMA.schemas", (("schema_name", "schema_name"),),
        "Schema of the table"),
    Key("tap_columns_table", "TAP_SCHEMA.columns", "TAP_SCHEMA.tables", (("table_name", "table_name"),),
        "Table of the column"),
    Key("tap_keys_from", "TAP_SCHEMA.keys", "TAP_SCHEMA.tables", (("from_table", "table_name"),),
        "Table the key starts from"),
    Key("tap_keys_target", "TAP_SCHEMA.keys", "TAP_SCHEMA.tables", (("target_table", "table_name"),),
        "Table the key points to"),
    Key("tap_key_columns_key", "TAP_SCHEMA.key_columns", "TAP_SCHEMA.keys", (("key_id", "key_id"),),
        "Key of the column pair"),
)


def _c(name: str, datatype: str, description: str, arraysize: str | None = None, principal: bool = True) -> Column:
    return Column(name, None, None, description, datatype, arraysize, principal=principal, std=True)


S, I = "char", "int"  # noqa: E741 - TAP_SCHEMA column types, short for the table below
TAP_SCHEMA_TABLES = {
    "schemas": ("Schemas published by this service", (
        _c("schema_name", S, "Schema name", "*"), _c("utype", S, "Schema utype", "*"),
        _c("description", S, "Schema description", "*"), _c("schema_index", I, "Recommended sort order"))),
    "tables": ("Tables published by this service", (
        _c("schema_name", S, "Schema the table belongs to", "*"),
        _c("table_name", S, "Table name as used in queries", "*"),
        _c("table_type", S, "table or view", "*"), _c("utype", S, "Table utype", "*"),
        _c("description", S, "Table description", "*"), _c("table_index", I, "Recommended sort order"))),
    "columns": ("Columns of the published tables", (
        _c("table_name", S, "Table the column belongs to", "*"), _c("column_name", S, "Column name", "*"),
        _c("utype", S, "Column utype", "*"), _c("ucd", S, "Unified content descriptor", "*"),
        _c("unit", S, "Unit (VOUnit)", "*"), _c("description", S, "Column description", "*"),
        _c("datatype", S, "VOTable datatype", "*"), _c("arraysize", S, "VOTable arraysize", "*"),
        _c("xtype", S, "VOTable xtype", "*"), _c('"size"', I, "Deprecated length of variable-length columns"),
        _c("principal", I, "1 for the columns shown by default"), _c("indexed", I, "1 for indexed columns"),
        _c("std", I, "1 for columns defined by a standard"), _c("column_index", I, "Recommended sort order"))),
    "keys": ("Foreign keys between the published tables", (
        _c("key_id", S, "Key identifier", "*"), _c("from_table", S, "Table with the foreign key", "*"),
        _c("target_table", S, "Table the key points to", "*"), _c("utype", S, "Key utype", "*"),
        _c("description", S, "Key description", "*"))),
    "key_columns": ("Column pairs of the foreign keys", (
        _c("key_id", S, "Key identifier", "*"), _c("from_column", S, "Column in from_table", "*"),
        _c("target_column", S, "Column in target_table", "*"))),
}

# PostgreSQL type (format_type) -> VOTable datatype, arraysize, xtype.
PG_TO_VOTABLE = {
    "bigint": ("long", None, None), "integer": ("int", None, None), "smallint": ("short", None, None),
    "real": ("float", None, None), "double precision": ("double", None, None), "numeric": ("double", None, None),
    "boolean": ("boolean", None, None), "text": ("char", "*", None), "date": ("char", "*", "timestamp"),
    "timestamp with time zone": ("char", "*", "timestamp"), "timestamp without time zone": ("char", "*", "timestamp"),
    "jsonb": ("char", "*", None), "json": ("char", "*", None), "bytea": ("unsignedByte", "*", None),
}


def votable_type(pg_type: str) -> tuple[str, str | None, str | None]:
    """VOTable datatype, arraysize and xtype of a PostgreSQL type name."""
    base = pg_type.split("(")[0].strip()
    if base in PG_TO_VOTABLE:
        return PG_TO_VOTABLE[base]
    return ("char", "*", None)  # varchar, character, arrays...: sent as text


def _schema_columns(table: sa.Table) -> list[Column]:
    indexed = {c.name for c in table.primary_key.columns}
    if any(ix.name and ix.name.endswith("_q3c_idx") for ix in table.indexes):
        indexed |= {"ra", "dec"}
    out = []
    for c in table.columns:
        ucd = c.info.get("ucd")
        out.append(Column(c.name, c.info.get("unit"), ucd, c.comment or "", indexed=c.name in indexed,
                          principal=c.name in indexed or bool(ucd and "meta.main" in ucd)))
    return out


def _final_catalog_columns() -> list[Column]:
    return [Column(name, unit, ucd, description, indexed=name in ("obsid", "ra", "dec"),
                   principal=not ucd or "stat.error" not in ucd)
            for name, unit, ucd, description in views.resolved(views.FINAL_CATALOG)]


def published_tables() -> list[sa.Table]:
    """The schema's tables that TAP publishes (declared `published`), in declaration order."""
    return [t for t in schema.metadata.tables.values() if t.info.get("published")]


def published_keys() -> list[Key]:
    """The foreign keys between published relations, as the declarations state them, then TAP_SCHEMA's."""
    declared = [("final_catalog", k) for k in views.FINAL_CATALOG_KEYS]
    declared += [(t.name, k) for t in published_tables() for k in t.info.get("foreign_keys", ())]
    return [Key(f"{name}_{k.table}", name, k.table, k.columns, k.description) for name, k in declared] + \
        list(TAP_SCHEMA_KEYS)


def declared_tables() -> list[Table]:
    """Every published relation with the metadata its declaration gives (datatypes unset)."""
    tables = [Table("public", "final_catalog", "public", "final_catalog", views.FINAL_CATALOG_DESCRIPTION, "table",
                    tuple(_final_catalog_columns()))]
    for t in published_tables():
        tables.append(Table("public", t.name, "public", t.name, t.comment or "", "table", tuple(_schema_columns(t))))
    for name, (description, columns) in TAP_SCHEMA_TABLES.items():
        tables.append(Table(TAP_SCHEMA, f"{TAP_SCHEMA}.{name}", PG_TAP_SCHEMA, name, description, "table", columns))
    return tables


def _with_types(conn: Connection, table: Table) -> Table | None:
    rows = conn.execute(sa.text(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        "join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = :s and c.relname = :t and a.attnum > 0 and not a.attisdropped"),
        {"s": table.pg_schema, "t": table.pg_name}).all()
    if not rows:
        return None  # not created in this database (yet)
    types = dict(rows)
    columns = []
    for col in table.columns:
        if col.bare not in types:
            continue
        datatype, arraysize, xtype = (col.datatype, col.arraysize, col.xtype) if col.datatype else \
            votable_type(types[col.bare])
        columns.append(Column(col.name, col.unit, col.ucd, col.description, datatype, arraysize, xtype,
                              col.principal, col.indexed, col.std))
    return Table(table.schema, table.name, table.pg_schema, table.pg_name, table.description, table.table_type,
                 tuple(columns))


def tables(conn: Connection) -> list[Table]:
    """The published relations that exist in this database, with datatypes read from it."""
    return [t for t in (_with_types(conn, t) for t in declared_tables()) if t is not None]


def tap_schema_ddl() -> list[str]:
    """CREATE statements of the TAP_SCHEMA tables (schema tap_schema in PostgreSQL)."""
    pg = {"char": "text", "int": "integer"}
    out = [f"CREATE SCHEMA IF NOT EXISTS {PG_TAP_SCHEMA}"]
    for name, (description, columns) in TAP_SCHEMA_TABLES.items():
        cols = ", ".join(f'"{c.bare}" {pg[c.datatype]}' for c in columns)
        out.append(f"CREATE TABLE IF NOT EXISTS {PG_TAP_SCHEMA}.{name} ({cols})")
        out.append(f"COMMENT ON TABLE {PG_TAP_SCHEMA}.{name} IS '{description}'")
    return out


def fill_tap_schema(conn: Connection) -> None:
    """Replace the rows of TAP_SCHEMA with the published relations that exist in this database."""
    present = tables(conn)
    names = {t.name for t in present}
    for name in TAP_SCHEMA_TABLES:
        conn.execute(sa.text(f"DELETE FROM {PG_TAP_SCHEMA}.{name}"))
    schemas = sorted({t.schema for t in present}, key=lambda s: s != "public")
    conn.execute(sa.text(f"INSERT INTO {PG_TAP_SCHEMA}.schemas VALUES (:n, NULL, :d, :i)"),
                 [{"n": s, "d": SCHEMA_DESCRIPTIONS[s], "i": i} for i, s in enumerate(schemas)])
    conn.execute(sa.text(f"INSERT INTO {PG_TAP_SCHEMA}.tables VALUES (:s, :n, :k, NULL, :d, :i)"),
                 [{"s": t.schema, "n": t.name, "k": t.table_type, "d": t.description, "i": i}
                  for i, t in enumerate(present)])
    conn.execute(sa.text(f"INSERT INTO {PG_TAP_SCHEMA}.columns VALUES "
                         "(:t, :n, NULL, :ucd, :unit, :d, :dt, :a, :x, NULL, :p, :ix, :std, :i)"),
                 [{"t": t.name, "n": c.name, "ucd": c.ucd, "unit": c.unit, "d": c.description, "dt": c.datatype,
                   "a": c.arraysize, "x": c.xtype, "p": int(c.principal), "ix": int(c.indexed), "std": int(c.std),
                   "i": i} for t in present for i, c in enumerate(t.columns)])
    keys = [k for k in published_keys() if k.from_table in names and k.target_table in names]
    if keys:
        conn.execute(sa.text(f"INSERT INTO {PG_TAP_SCHEMA}.keys VALUES (:k, :f, :t, NULL, :d)"),
                     [{"k": k.key_id, "f": k.from_table, "t": k.target_table, "d": k.description} for k in keys])
        conn.execute(sa.text(f"INSERT INTO {PG_TAP_SCHEMA}.key_columns VALUES (:k, :f, :t)"),
                     [{"k": k.key_id, "f": f, "t": t} for k in keys for f, t in k.columns])


def grant_reader(conn: Connection) -> None:
    """Create the read-only role (cluster-wide, so once) and let it read the published relations only."""
    conn.execute(sa.text(f"""
        DO $$ BEGIN
            CREATE ROLE {READER_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$"""))
    # The owner switches to the role (SET ROLE) where it cannot log in as it; superusers need no grant.
    superuser = conn.execute(sa.text("select rolsuper from pg_roles where rolname = current_user")).scalar()
    if not superuser:
        conn.execute(sa.text(f"""
            DO $$ BEGIN GRANT {READER_ROLE} TO CURRENT_USER;
            EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN NULL; END $$"""))
    db = conn.execute(sa.text("select current_database()")).scalar()
    # TEMPORARY: TAP_UPLOAD tables are temporary tables of the query's transaction (PUBLIC may lack it)
    conn.execute(sa.text(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {READER_ROLE}'))
    for t in tables(conn):
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {t.pg_schema} TO {READER_ROLE}"))
        conn.execute(sa.text(f'GRANT SELECT ON "{t.pg_schema}"."{t.pg_name}" TO {READER_ROLE}'))


def revoke_reader(conn: Connection) -> None:
    """Take back what grant_reader gave in this database (the role itself stays: other databases use it)."""
    exists = conn.execute(sa.text("select 1 from pg_roles where rolname = :r"), {"r": READER_ROLE}).first()
    if not exists:
        return
    for t in tables(conn):
        conn.execute(sa.text(f'REVOKE ALL ON "{t.pg_schema}"."{t.pg_name}" FROM {READER_ROLE}'))
    conn.execute(sa.text(f"REVOKE ALL ON SCHEMA public FROM {READER_ROLE}"))
    db = conn.execute(sa.text("select current_database()")).scalar()
    conn.execute(sa.text(f'REVOKE ALL ON DATABASE "{db}" FROM {READER_ROLE}'))


def refresh(conn: Connection) -> None:
    """Refill TAP_SCHEMA and the reader's grants (after `db init` or a migration that adds relations)."""
    fill_tap_schema(conn)
    grant_reader(conn)
