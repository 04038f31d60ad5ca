"""Ingest specs: what the loader reads of a source, taken from its declaration (catalogdb/sources/*.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalogdb.config import SOURCE_SPECS_DIR
from catalogdb.db.catalogues import catalogue, sources
from catalogdb.db.schema import metadata
from catalogdb.errors import CatalogdbError
from catalogdb.ingest.units import unit_scale

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


def load_spec(source: str) -> Spec:
    """The ingest spec of a source: the file-read columns of its declaration (catalogdb/sources/<source>.toml)."""
    cat = catalogue(source)
    cols = tuple(ColumnSpec(name=c.name, file=c.file, type=c.type, unit=c.file_unit or c.unit,
                            units_accepted=c.units_accepted, required=c.required,
                            null_values=cat.null_values if c.null_values is None else c.null_values)
                 for c in cat.columns if c.ingest)
    spec = Spec(source=cat.source, table=cat.table, key=cat.key, formats=cat.formats, columns=cols,
                fits_hdu=cat.fits_hdu, ra=cat.ra, dec=cat.dec, nan_is_null=cat.nan_is_null, skip=cat.skip,
                description=cat.description)
    _check_spec(spec, SOURCE_SPECS_DIR / f"{source}.toml")
    return spec


def _check_spec(spec: Spec, path: Path) -> None:
    table = metadata.tables[spec.table]
    skip = {s.lower() for s in spec.skip}
    for c in spec.columns:
        if c.file.lower() in skip:
            raise CatalogdbError(f"{path}: column {c.file!r} is both mapped and skipped")
        target = table.columns[c.name].info.get("unit")
        if c.unit is not None and unit_scale(c.unit, target) is None:
            raise CatalogdbError(f"{path}: column {c.name!r} declares file unit {c.unit!r}, which is not {target!r} "
                                 f"or a multiple of it ({spec.table}.{c.name} is stored in {target!r})")
    names = {c.name for c in spec.columns}
    for k in (*spec.key, spec.ra, spec.dec):
        if k is not None and k not in names:
            raise CatalogdbError(f"{path}: {k!r} is used as key or coordinate but not read from the file")


__all__ = ["ColumnSpec", "Spec", "load_spec", "sources"]
