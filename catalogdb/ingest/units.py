"""Unit matching with astropy.units: does a file's unit mean the declared one, and by what factor does it scale."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalogdb.ingest.spec import ColumnSpec


def _unit(text: str):
    import astropy.units as u

    try:
        return u.Unit(text.strip().strip("'\""), parse_strict="raise")
    except (ValueError, TypeError):
        return None


def units_match(found: str, col: ColumnSpec) -> bool:
    """Whether a file's unit string means the unit the spec expects (same unit, scale 1)."""
    found = found.strip().strip("'\"")
    wanted = [col.unit or "", *col.units_accepted]
    if found.replace(" ", "") in {w.replace(" ", "") for w in wanted}:
        return True
    got = _unit(found)
    for w in wanted:
        expect = _unit(w)
        if got is not None and expect is not None:
            try:
                if got == expect or got.to(expect) == 1.0:
                    return True
            except Exception:  # noqa: BLE001 - inconvertible units just do not match
                continue
    return False


def unit_scale(unit: str | None, target: str | None) -> float | None:
    """The factor taking values in `unit` to `target` when they differ by a pure scale (kpc -> pc: 1000), else None."""
    if unit is None or target is None:
        return 1.0 if unit == target else None
    if unit.strip().strip("'\"").replace(" ", "") == target.replace(" ", ""):
        return 1.0
    got, want = _unit(unit), _unit(target)
    if got is None or want is None:
        return None
    try:
        factor = float(got.to(want))  # astropy refuses offsets (K -> deg_C) and function units (mag, dex) here
    except Exception:  # noqa: BLE001 - inconvertible units have no factor
        return None
    return factor if math.isfinite(factor) and factor > 0 else None


def file_unit_scale(found: str | None, col: ColumnSpec, target: str | None) -> tuple[str, float] | None:
    """(unit the file's values are in, factor to `target`) for a spec column; None when not a pure multiple."""
    # The file's own unit where it states one (a spelling the spec accepts means the spec's unit); where the
    # file states none (CSV, most survey FITS files), the unit the spec declares for the survey.
    if col.unit is None:
        return (found or "", 1.0)  # the spec checks no unit for this column
    if not found or units_match(found, col):
        factor = unit_scale(col.unit, target)
        return None if factor is None else (col.unit, factor)
    found = found.strip().strip("'\"")
    factor = unit_scale(found, target)
    return None if factor is None else (found, factor)
