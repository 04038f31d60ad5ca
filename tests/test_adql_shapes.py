"""Translations reused across queries of one shape give exactly what a fresh translation gives."""

from __future__ import annotations

import pytest

from catalogdb.tap import adql, shapes

CONE = ("SELECT {top} obsid FROM final_catalog "
        "WHERE {one} = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r}))")


def fresh(query: str, limit: int = 101) -> adql.Translation:
    return adql._translate(query, limit, ())


@pytest.fixture(autouse=True)
def empty_cache():
    shapes._shapes.clear()
    yield
    shapes._shapes.clear()


def cone(ra="10.5", dec="-20.25", r="0.1", top="", one="1") -> str:
    return CONE.format(ra=ra, dec=dec, r=r, top=top, one=one)


@pytest.mark.parametrize("second", [
    cone(ra="200.125", dec="33.5", r="0.05"),  # a new centre and radius: the shape is reused
    cone(ra="11", dec="-21", r="2"),  # a negative declination keeps its sign
    cone(top="TOP 5"),  # another shape: TOP adds tokens
    cone(one="0"),  # a number that is not a q3c parameter must be the same to reuse
    cone(ra="7", dec="7", r="7"),  # equal values
])
def test_a_reused_shape_gives_the_fresh_translation(second):
    first = adql.translate(cone(), limit=101)
    assert len(shapes._shapes) == 1  # kept: each parameter stands at one number of the query
    got = adql.translate(second, limit=101)
    want = fresh(second)
    assert (got.sql, got.params, got.columns.keys()) == (want.sql, want.params, want.columns.keys())
    assert first.sql == fresh(cone()).sql


def test_values_that_cannot_be_placed_are_not_kept():
    # RA = Dec = 10: which number is which parameter cannot be told, so the shape is not kept
    adql.translate(cone(ra="10", dec="10"), limit=101)
    assert not shapes._shapes
    other = cone(ra="12", dec="-3")
    assert adql.translate(other, limit=101).params == fresh(other).params


def test_the_row_cap_is_part_of_the_shape():
    adql.translate(cone(), limit=101)
    assert adql.translate(cone(ra="1"), limit=11).sql == fresh(cone(ra="1"), 11).sql
