"""Ingest specs: a declarative spec per source (catalogdb/sources/*.toml), checked against the schema."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from catalogdb.config import SOURCE_SPECS_DIR
from catalogdb.db.schema import metadata
from catalogdb.errors import CatalogdbError
from catalogdb.ingest.units import unit_scale

SQL_TYPES = {"int16": sa.SmallInteger, "int32": sa.Integer, "int64": sa.BigInteger, "float32": sa.REAL,
             "float64": sa.Double, "text": sa.Text, "date": sa.Date}


# --- specs ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnSpec:
    """One table column: the file column it comes from, its type, expected unit, whether required."""

    name: str
    file: str
    type: str
    unit: str | None = None
    units_accepted: tuple[str, ...] = ()
    required: bool = False
    null_values: tuple[float, ...] = ()
    scale: float = 1.0  # file unit -> table unit for one file, set by _resolve (1 in a loaded spec)


@dataclass(frozen=True)
class Spec:
    """A survey source as declared in catalogdb/sources/<source>.toml."""

    source: str
    table: str
    key: tuple[str, ...]
    formats: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    fits_hdu: int = 1
    ra: str | None = None
    dec: str | None = None
    nan_is_null: bool = True
    skip: tuple[str, ...] = ()
    description: str = ""

    @property
    def not_null(self) -> set[str]:
        """Columns that may not be NULL: the key and NOT NULL columns of the table."""
        table = metadata.tables[self.table]
        return set(self.key) | {c.name for c in table.columns if not c.nullable}


def sources() -> list[str]:
    """The sources with a spec in catalogdb/sources/."""
    return sorted(p.stem for p in SOURCE_SPECS_DIR.glob("*.toml"))


def load_spec(source: str) -> Spec:
    """Read and check catalogdb/sources/<source>.toml against the table it loads."""
    path = SOURCE_SPECS_DIR / f"{source}.toml"
    if not path.exists():
        raise CatalogdbError(f"unknown source {source!r}; expected one of: {', '.join(sources())}")
    raw = tomllib.loads(path.read_text())
    default_nulls = tuple(raw.get("null_values", ()))
    cols = []
    for name, c in raw["columns"].items():
        cols.append(ColumnSpec(name=name, file=c.get("file", name), type=c["type"], unit=c.get("unit"),
                               units_accepted=tuple(c.get("units_accepted", ())),
                               required=bool(c.get("required", False)),
                               null_values=tuple(c.get("null_values", default_nulls))))
    spec = Spec(source=raw["source"], table=raw["table"], key=tuple(raw["key"]), formats=tuple(raw["formats"]),
                columns=tuple(cols), fits_hdu=int(raw.get("fits_hdu", 1)), ra=raw.get("ra"), dec=raw.get("dec"),
                nan_is_null=bool(raw.get("nan_is_null", True)), skip=tuple(raw.get("skip", ())),
                description=raw.get("description", ""))
    _check_spec(spec, path)
    return spec


def _check_spec(spec: Spec, path: Path) -> None:
    table = metadata.tables.get(spec.table)
    if table is None:
        raise CatalogdbError(f"{path}: table {spec.table!r} is not in the schema")
    skip = {s.lower() for s in spec.skip}
    for c in spec.columns:
        if c.name not in table.columns:
            raise CatalogdbError(f"{path}: column {c.name!r} is not a column of {spec.table}")
        if c.type not in SQL_TYPES or not isinstance(table.columns[c.name].type, SQL_TYPES[c.type]):
            raise CatalogdbError(f"{path}: column {c.name!r} has type {c.type!r} but {spec.table}.{c.name} "
                                 f"is {table.columns[c.name].type}")
        if c.file.lower() in skip:
            raise CatalogdbError(f"{path}: column {c.file!r} is both mapped and skipped")
        target = table.columns[c.name].info.get("unit")
        if c.unit is not None and unit_scale(c.unit, target) is None:
            raise CatalogdbError(f"{path}: column {c.name!r} declares unit {c.unit!r}, which is not {target!r} or "
                                 f"a multiple of it ({spec.table}.{c.name} is stored in {target!r})")
    names = {c.name for c in spec.columns}
    for k in (*spec.key, spec.ra, spec.dec):
        if k is not None and k not in names:
            raise CatalogdbError(f"{path}: {k!r} is used as key or coordinate but not mapped")


__all__ = ["ColumnSpec", "Spec", "load_spec", "sources"]
