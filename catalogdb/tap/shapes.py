"""Translations reused across queries of one shape: the same ADQL but for the numbers given to q3c.

A cone search differs from the last one only in its centre and radius, which the translation turns into
parameters (adql._parametrise). Parsing and generating the SQL again costs more than the rest of the request,
so the translation of the first query of a shape is kept with where its parameters stand among the query's
number tokens; a later query whose tokens are the same except for those numbers gets that SQL with its own
values. Every other token, numbers included, must be identical, so a TOP 5 never reuses a TOP 6.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import sqlglot
from sqlglot.tokens import TokenType

MAX_SHAPES = 256  # shapes kept, least recently used dropped first


@dataclass(frozen=True)
class Shape:
    """A translation with where its parameters come from: (name, index among the number tokens, sign)."""

    sql: str
    columns: dict
    params: tuple[tuple[str, int, float], ...]
    fixed: tuple[tuple[int, str], ...]  # (index among the number tokens, text) of the numbers kept literal


_shapes: OrderedDict[tuple, Shape] = OrderedDict()
_lock = threading.Lock()


def _tokens(adql: str, dialect) -> tuple[tuple, list[tuple[str, bool]]] | None:
    """(key of the shape, the number tokens as (text, preceded by '-')), or None when it cannot be tokenised."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(adql)
    except sqlglot.errors.SqlglotError:
        return None
    key, numbers = [], []
    for i, t in enumerate(tokens):
        if t.token_type == TokenType.NUMBER:
            key.append("#")
            numbers.append((t.text, i > 0 and tokens[i - 1].token_type == TokenType.DASH))
        else:
            key.append((t.token_type.name, t.text))
    return tuple(key), numbers


def lookup(adql: str, limit: int | None, dialect) -> tuple[str, dict, dict[str, float]] | None:
    """(sql, columns, params) for `adql` from a kept shape, or None."""
    found = _tokens(adql, dialect)
    if found is None:
        return None
    key, numbers = found
    with _lock:
        shape = _shapes.get((key, limit))
        if shape is not None:
            _shapes.move_to_end((key, limit))
    if shape is None or any(numbers[i][0] != text for i, text in shape.fixed):
        return None
    return shape.sql, shape.columns, {name: sign * float(numbers[i][0]) for name, i, sign in shape.params}


def remember(adql: str, limit: int | None, dialect, sql: str, columns: dict, params: dict[str, float]) -> None:
    """Keep the translation of `adql` for its shape, where each parameter matches one number token only."""
    found = _tokens(adql, dialect)
    if found is None:
        return
    key, numbers = found
    used, placed = set(), []
    for name, value in params.items():
        matches = [i for i, (text, _) in enumerate(numbers) if float(text) == abs(value)]
        if len(matches) != 1 or matches[0] in used:
            return  # e.g. CIRCLE('ICRS', 10, 10, 1): which 10 is the RA cannot be told from the values
        i = matches[0]
        sign = -1.0 if value < 0 or (value == 0 and numbers[i][1]) else 1.0
        used.add(i)
        placed.append((name, i, sign))
    shape = Shape(sql, columns, tuple(placed), tuple((i, numbers[i][0]) for i in range(len(numbers)) if i not in used))
    if {name: sign * float(numbers[i][0]) for name, i, sign in shape.params} != params:
        return  # the shape would not give this query's own values back
    with _lock:
        _shapes[(key, limit)] = shape
        _shapes.move_to_end((key, limit))
        while len(_shapes) > MAX_SHAPES:
            _shapes.popitem(last=False)
