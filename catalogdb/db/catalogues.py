"""One declaration per survey catalogue: catalogdb/sources/<source>.toml.

Each file declares its table once, the way a DaCHS resource descriptor does: per column the type, unit
(VOUnit, as stored), UCD and description, the file's column name and the units the survey writes, and per
table the key, the foreign keys and whether TAP publishes it. The SQLAlchemy table (schema.py), the ingest
spec (load.py), TAP_SCHEMA and the exports' metadata are all made from it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa

from catalogdb.config import SOURCE_SPECS_DIR
from catalogdb.errors import CatalogdbError

SQL_TYPES = {"int16": sa.SmallInteger, "int32": sa.Integer, "int64": sa.BigInteger, "float32": sa.REAL,
             "float64": sa.Double, "text": sa.Text, "date": sa.Date, "bool": sa.Boolean}
COLUMN_FIELDS = {"type", "unit", "ucd", "description", "not_null", "ingest", "file", "file_unit", "units_accepted",
                 "required", "null_values"}


@dataclass(frozen=True)
class DeclaredColumn:
    """One column of a catalogue as its file declares it."""

    name: str
    type: str
    unit: str | None
    ucd: str | None
    description: str
    not_null: bool = False
    ingest: bool = True  # False: catalogdb computes it (e.g. the parallax zero point), no file holds it
    file: str = ""
    file_unit: str | None = None  # the unit the survey writes, where it differs from `unit`
    units_accepted: tuple[str, ...] = ()
    required: bool = False
    null_values: tuple[float, ...] | None = None  # None: the catalogue's default


@dataclass(frozen=True)
class ForeignKey:
    """A logical key from this catalogue to another table (published in TAP_SCHEMA.keys)."""

    table: str
    columns: tuple[tuple[str, str], ...]
    description: str


@dataclass(frozen=True)
class Catalogue:
    """A survey catalogue: its table and how its files are read."""

    source: str
    description: str
    table: str
    comment: str
    key: tuple[str, ...]
    formats: tuple[str, ...]
    columns: tuple[DeclaredColumn, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    published: bool = False
    q3c_index: bool = False
    fits_hdu: int = 1
    ra: str | None = None
    dec: str | None = None
    nan_is_null: bool = True
    null_values: tuple[float, ...] = ()
    skip: tuple[str, ...] = ()


def sources() -> list[str]:
    """The sources with a declaration in catalogdb/sources/."""
    return sorted(p.stem for p in SOURCE_SPECS_DIR.glob("*.toml"))


@cache
def catalogue(source: str) -> Catalogue:
    """The declaration in catalogdb/sources/<source>.toml."""
    path = SOURCE_SPECS_DIR / f"{source}.toml"
    if not path.exists():
        raise CatalogdbError(f"unknown source {source!r}; expected one of: {', '.join(sources())}")
    raw = tomllib.loads(path.read_text())
    columns = []
    for name, c in raw["columns"].items():
        unknown = set(c) - COLUMN_FIELDS
        if unknown or c.get("type") not in SQL_TYPES:
            raise CatalogdbError(f"{path}: column {name!r} has unknown fields {sorted(unknown)} or type "
                                 f"{c.get('type')!r}; expected a type of {', '.join(SQL_TYPES)}")
        columns.append(DeclaredColumn(
            name=name, type=c["type"], unit=c.get("unit"), ucd=c.get("ucd"), description=c.get("description", ""),
            not_null=bool(c.get("not_null", False)), ingest=bool(c.get("ingest", True)), file=c.get("file", name),
            file_unit=c.get("file_unit"), units_accepted=tuple(c.get("units_accepted", ())),
            required=bool(c.get("required", False)),
            null_values=tuple(c["null_values"]) if "null_values" in c else None))
    keys = tuple(ForeignKey(k["table"], tuple(tuple(pair) for pair in k["columns"]), k["description"])
                 for k in raw.get("foreign_keys", ()))
    return Catalogue(
        source=raw["source"], description=raw.get("description", ""), table=raw["table"], comment=raw["comment"],
        key=tuple(raw["key"]), formats=tuple(raw["formats"]), columns=tuple(columns), foreign_keys=keys,
        published=bool(raw.get("published", False)), q3c_index=bool(raw.get("q3c_index", False)),
        fits_hdu=int(raw.get("fits_hdu", 1)), ra=raw.get("ra"), dec=raw.get("dec"),
        nan_is_null=bool(raw.get("nan_is_null", True)), null_values=tuple(raw.get("null_values", ())),
        skip=tuple(raw.get("skip", ())))


def catalogue_of_table(table: str) -> Catalogue | None:
    """The catalogue whose declaration makes `table`, if any."""
    return next((c for c in map(catalogue, sources()) if c.table == table), None)


def make_table(cat: Catalogue, metadata: sa.MetaData) -> sa.Table:
    """The SQLAlchemy table the catalogue declares, on `metadata` (unit and UCD in info, description as comment)."""
    columns = [sa.Column(c.name, SQL_TYPES[c.type], comment=c.description, info={"unit": c.unit, "ucd": c.ucd},
                         primary_key=c.name in cat.key, nullable=not (c.not_null or c.name in cat.key))
               for c in cat.columns]
    extra = [sa.Index(f"{cat.table}_q3c_idx", sa.text("q3c_ang2ipix(ra, dec)"))] if cat.q3c_index else []
    info = {"published": cat.published, "foreign_keys": cat.foreign_keys}
    return sa.Table(cat.table, metadata, *columns, *extra, comment=cat.comment, info=info)
