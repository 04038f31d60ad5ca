"""ADQL 2.0 (and the common 2.1 additions) to PostgreSQL with q3c, through the sqlglot parser.

Parser choice. Two maintained Python parsers were tried:
- queryparser-python3 (AIP, ANTLR grammar of ADQL 2.0) parses real ADQL, but its PostgreSQL output
  targets pg_sphere (`spoint(...) @ scircle(...)`), a different extension from ours; retargeting it to
  q3c means rewriting its listener, and it releases rarely.
- sqlglot is a pure-Python SQL parser and transpiler with a typed AST, a transform API and frequent
  releases. It has no ADQL dialect, but ADQL is SQL-92 plus TOP and a few functions: a dialect deriving
  from its PostgreSQL one with the TOP keyword added parses ADQL, and geometry calls arrive as function
  nodes that are rewritten on the tree. We use sqlglot.

What the translation guarantees: exactly one SELECT (or set operation of SELECTs); no INTO, locking
clause or parameter; only the published relations (see `published`) and the query's own CTEs in FROM;
only the ADQL functions (math, trigonometry, aggregates, a few string functions, CAST to plain types,
geometry). Geometry becomes q3c: CONTAINS/INTERSECTS(POINT, CIRCLE) -> q3c_join,
POLYGON and BOX -> q3c_poly_query, DISTANCE -> q3c_dist, so a cone search uses the q3c index.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType

from catalogdb.db import published
from catalogdb.tap import shapes

MAX_QUERY_CHARS = 100_000


class AdqlError(Exception):
    """A query that cannot be run; the message is for the astronomer who wrote it."""


class ADQL(Postgres):
    """PostgreSQL's grammar plus ADQL's `SELECT TOP n`."""

    class Tokenizer(Postgres.Tokenizer):
        KEYWORDS = {**Postgres.Tokenizer.KEYWORDS, "TOP": TokenType.TOP}


@dataclass(frozen=True)
class Translation:
    """The PostgreSQL text to run and the declared metadata of the output columns, by lower-case name."""

    sql: str
    columns: dict[str, published.Column]
    params: dict[str, float] | None = None  # values of the %(pN)s placeholders, where there are any


# Function nodes allowed anywhere; everything else (pg_sleep, current_setting, dblink, ...) is refused.
ALLOWED_FUNCS = {
    "Abs", "Ceil", "Floor", "Exp", "Ln", "Log", "Sqrt", "Pow", "Round", "Trunc", "Rand", "Pi", "Degrees",
    "Radians", "Sin", "Cos", "Tan", "Cot", "Asin", "Acos", "Atan", "Atan2", "Sign", "Mod",
    "Count", "Sum", "Avg", "Min", "Max", "Stddev", "StddevSamp", "StddevPop", "Variance", "VariancePop",
    "Lower", "Upper", "Length", "Substring", "Trim", "Concat", "Coalesce", "Nullif", "Greatest", "Least",
    "Case", "If", "Cast", "Exists", "Contains",
}
ALLOWED_ANONYMOUS = {
    "point", "circle", "polygon", "box", "intersects", "distance", "coord1", "coord2", "coordsys",
    "ceiling", "log10", "truncate", "power", "rand", "sign", "cot", "atan2", "degrees", "radians",
}
CAST_TYPES = {"SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "REAL", "CHAR", "VARCHAR", "TEXT", "TIMESTAMP",
              "TIMESTAMPTZ", "DECIMAL", "BOOLEAN", "NCHAR", "NVARCHAR", "DATE"}
FORBIDDEN_NODES = (exp.Into, exp.Lock, exp.Placeholder, exp.Parameter, exp.Command, exp.Insert, exp.Update,
                   exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge, exp.Set, exp.Transaction, exp.Commit,
                   exp.Rollback, exp.Copy)
FRAMES = ("", "ICRS", "J2000", "FK5", "UNKNOWNFRAME")
# PostgreSQL's system columns: present in every table, published in none.
SYSTEM_COLUMNS = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"}


@cache
def _catalog() -> dict[tuple[str, str], published.Table]:
    """(schema or '', table) in lower case -> published table, for every spelling ADQL may use."""
    out = {}
    for t in published.declared_tables():
        short = t.name.split(".")[-1].lower()
        out[(t.schema.lower(), short)] = t
        if t.schema == "public":
            out[("", short)] = t
    return out


def _fname(node: exp.Expression) -> str:
    return node.name.lower() if isinstance(node, exp.Anonymous) else type(node).__name__.lower()


def _args(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    return [a for a in (node.args.get("this"), node.args.get("expression")) if a is not None]


def _coords(node: exp.Expression, what: str) -> list[exp.Expression]:
    """The numeric arguments of POINT/CIRCLE/POLYGON/BOX, after checking the optional frame string."""
    args = _args(node)
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        frame = args[0].name.strip().upper()
        if frame.split(" ")[0] not in FRAMES:
            raise AdqlError(f"{what}: coordinate system {args[0].name!r} is not supported (use 'ICRS')")
        args = args[1:]
    return args


def _point(node: exp.Expression) -> tuple[exp.Expression, exp.Expression]:
    if _fname(node) != "point":
        raise AdqlError(f"expected POINT(...) but got {node.sql(dialect=ADQL)[:60]}")
    args = _coords(node, "POINT")
    if len(args) != 2:
        raise AdqlError("POINT takes a coordinate system and two coordinates")
    return args[0], args[1]


def _array(values: list[exp.Expression]) -> exp.Expression:
    return exp.cast(exp.Array(expressions=values), exp.DataType.build("DOUBLE PRECISION[]", dialect="postgres"))


def _region(ra: exp.Expression, dec: exp.Expression, region: exp.Expression) -> exp.Expression:
    """The q3c predicate 'point (ra, dec) lies in region'."""
    kind = _fname(region)
    if kind == "circle":
        args = _coords(region, "CIRCLE")
        if len(args) == 2 and _fname(args[0]) == "point":  # CIRCLE(POINT(...), r) of ADQL 2.1
            args = [*_point(args[0]), args[1]]
        if len(args) != 3:
            raise AdqlError("CIRCLE takes a coordinate system, a centre (ra, dec) and a radius in degrees")
        # q3c_join for a cone too, not q3c_radial_query: the same rows, but its four ipix ranges plan in 0.1 ms,
        # where q3c_radial_query's hundred cost 3 ms of planning with the q3c 2.0.0 extension (PG15, a 1-10'
        # cone on 521,424 rows: 0.21 against 3.78 ms in all; compat 0.31 against 0.39 ms). Only near 15 deg
        # does the extension's q3c_radial_query scan less (20 against 69 ms).
        return exp.Anonymous(this="q3c_join", expressions=[args[0], args[1], ra, dec, args[2]])
    if kind == "polygon":
        args = _coords(region, "POLYGON")
        if args and all(_fname(a) == "point" for a in args):
            args = [c for a in args for c in _point(a)]
        if len(args) < 6 or len(args) % 2:
            raise AdqlError("POLYGON takes a coordinate system and at least three vertices (ra, dec)")
        return exp.Anonymous(this="q3c_poly_query", expressions=[ra, dec, _array(args)])
    if kind == "box":
        args = _coords(region, "BOX")
        if len(args) != 4:
            raise AdqlError("BOX takes a coordinate system, a centre (ra, dec), a width and a height in degrees")
        return exp.Anonymous(this="q3c_poly_query", expressions=[ra, dec, _array(_box_corners(*args))])
    raise AdqlError(f"CONTAINS and INTERSECTS need a POINT and a CIRCLE, POLYGON or BOX, not {kind.upper()}")


def _box_corners(ra, dec, width, height) -> list[exp.Expression]:
    """Corners of a BOX: +-height/2 in dec, +-width/2 along the parallel (width / cos(dec)) in ra."""
    def p(sql: str) -> exp.Expression:
        return sqlglot.parse_one(sql, read="postgres")

    r, d, w, h = (f"({e.sql(dialect='postgres')})" for e in (ra, dec, width, height))
    half_ra = f"({w} / 2.0 / cos(radians({d})))"
    out = []
    for sr, sd in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        out += [p(f"{r} {'+' if sr > 0 else '-'} {half_ra}"), p(f"{d} {'+' if sd > 0 else '-'} {h} / 2.0")]
    return out


def _spatial(node: exp.Expression) -> exp.Expression:
    """CONTAINS(point, region) or INTERSECTS(either order) as a q3c boolean predicate."""
    a, b = _args(node)
    if _fname(node) == "intersects" and _fname(b) == "point":
        a, b = b, a
    ra, dec = _point(a)
    return _region(ra, dec, b)


def _has_columns(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column) or node.find(exp.Column) is not None


# DISTANCE(a, b) < r also gets q3c_join(a, b, r + JOIN_MARGIN_DEG) so the q3c index is used; the margin
# (3.6 micro-arcsec) only keeps rounding differences between q3c_join and q3c_dist from dropping a pair,
# and the q3c_dist comparison beside it still decides.
JOIN_MARGIN_DEG = 1e-9


def _distance_points(node: exp.Expression) -> list[exp.Expression]:
    args = _args(node)
    if len(args) == 2:
        args = [*_point(args[0]), *_point(args[1])]
    if len(args) != 4:
        raise AdqlError("DISTANCE takes two POINTs (or four coordinates)")
    return args


def _distance_below(node: exp.Expression) -> exp.Expression | None:
    """DISTANCE(a, b) < r (or <=, or r > DISTANCE) as q3c_join(...) AND q3c_dist(...) < r; None otherwise."""
    if isinstance(node, (exp.LT, exp.LTE)) and _fname(node.this) == "distance":
        call, radius = node.this, node.expression
    elif isinstance(node, (exp.GT, exp.GTE)) and _fname(node.expression) == "distance":
        call, radius = node.expression, node.this
    else:
        return None
    if _has_columns(radius) and not _has_columns(call):
        return None
    args = _distance_points(call)
    if not (_has_columns(args[2]) or _has_columns(args[3])):  # the index side must be a table's point
        args = [*args[2:], *args[:2]]
    dist = exp.Anonymous(this="q3c_dist", expressions=args)
    cmp = type(node)(this=dist, expression=radius) if isinstance(node, (exp.LT, exp.LTE)) else \
        type(node)(this=radius, expression=dist)
    wide = exp.Add(this=exp.Paren(this=radius.copy()), expression=exp.Literal.number(JOIN_MARGIN_DEG))
    join = exp.Anonymous(this="q3c_join", expressions=[*(a.copy() for a in args), wide])
    return exp.Paren(this=exp.And(this=join, expression=cmp))


def _is_01(node: exp.Expression) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.name in ("0", "1"):
        return int(node.name)
    return None


def _geometry(node: exp.Expression) -> exp.Expression:
    """Rewrite one node: comparisons with CONTAINS/INTERSECTS, DISTANCE, COORD1/2."""
    if isinstance(node, (exp.EQ, exp.NEQ)):
        left, right = node.this, node.expression
        for call, other in ((left, right), (right, left)):
            if _fname(call) in ("contains", "intersects") and _is_01(other) is not None:
                wanted = (_is_01(other) == 1) == isinstance(node, exp.EQ)
                pred = _spatial(call)
                return pred if wanted else exp.Not(this=exp.Paren(this=pred))
        return node
    below = _distance_below(node)
    if below is not None:
        return below
    name = _fname(node)
    if name in ("contains", "intersects"):
        return exp.Case(ifs=[exp.If(this=_spatial(node), true=exp.Literal.number(1))],
                        default=exp.Literal.number(0))
    if name == "distance":
        return exp.Anonymous(this="q3c_dist", expressions=_distance_points(node))
    if name in ("coord1", "coord2"):
        (arg,) = _args(node)
        return _point(arg)[0 if name == "coord1" else 1]
    return node


def _functions(node: exp.Expression) -> exp.Expression:
    """ADQL functions whose PostgreSQL spelling or meaning differs."""
    name = _fname(node)
    if isinstance(node, exp.Log):
        if node.args.get("expression") is None:
            return exp.Ln(this=node.this)  # ADQL LOG is the natural logarithm; PostgreSQL's is base 10
        if node.this.name == "10":  # sqlglot reads LOG10(x) as LOG(10, x)
            return exp.Anonymous(this="log", expressions=[node.expression])
    if name == "log10":
        return exp.Anonymous(this="log", expressions=node.expressions)
    if isinstance(node, exp.Rand) or name == "rand":
        return exp.Anonymous(this="random", expressions=[])
    if name == "ceiling":
        return exp.Ceil(this=node.expressions[0])
    if name == "truncate":
        node = exp.Trunc(this=node.expressions[0], decimals=(node.expressions[1:] or [None])[0])
    if isinstance(node, (exp.Round, exp.Trunc)) and node.args.get("decimals") is not None:
        # PostgreSQL rounds to n places only numerics; ADQL returns a double.
        fn = "round" if isinstance(node, exp.Round) else "trunc"
        inner = exp.Anonymous(this=fn, expressions=[exp.cast(node.this, "numeric"), node.args["decimals"]])
        return exp.cast(inner, "double precision")
    if isinstance(node, exp.Mod):
        return exp.Anonymous(this="mod", expressions=[exp.cast(node.this, "numeric"),
                                                      exp.cast(node.expression, "numeric")])
    return node


def _check(root: exp.Expression) -> None:
    for node in root.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise AdqlError("only SELECT queries are allowed")
        if isinstance(node, exp.Cast):
            target = node.to.this.name if hasattr(node.to.this, "name") else str(node.to.this)
            if target.upper() not in CAST_TYPES:
                raise AdqlError(f"CAST to {node.to.sql(dialect=ADQL)} is not supported")
        if isinstance(node, exp.Func) and not isinstance(node, (exp.Connector, exp.Binary)):
            ok = _fname(node) in ALLOWED_ANONYMOUS if isinstance(node, exp.Anonymous) else \
                type(node).__name__ in ALLOWED_FUNCS
            if not ok:
                shown = node.name if isinstance(node, exp.Anonymous) else node.sql(dialect=ADQL).split("(")[0]
                raise AdqlError(f"function {shown.upper()} is not supported")
        if isinstance(node, exp.Column) and node.name.lower() in SYSTEM_COLUMNS:
            raise AdqlError(f'column "{node.name}" does not exist')


def _names_cte(table: exp.Table) -> bool:
    """Whether the unqualified `table` names a CTE visible where it stands, with PostgreSQL's scoping.

    A WITH item is visible in its query's body and in the items after it; with RECURSIVE, in every item
    of its WITH. Inside the item `WITH x AS (SELECT ... FROM x)` (not recursive) x is the table, not the CTE.
    """
    name = table.name.lower()
    child, node = table, table.parent
    while node is not None:
        if isinstance(node, exp.With):
            items = node.expressions
            here = next(i for i, item in enumerate(items) if item is child)
            visible = items if node.args.get("recursive") else items[:here]
            if any(item.alias_or_name.lower() == name for item in visible):
                return True
        elif isinstance(node, exp.Query):
            with_ = node.args.get("with_")
            if with_ is not None and with_ is not child and \
                    any(item.alias_or_name.lower() == name for item in with_.expressions):
                return True
        child, node = node, node.parent
    return False


def _tables(root: exp.Expression, catalog: dict[tuple[str, str], published.Table]) -> dict[str, published.Table]:
    """Point every table reference at its published relation; returns alias/name -> table for metadata."""
    scope: dict[str, published.Table] = {}
    for table in list(root.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise AdqlError("table functions are not allowed in FROM")
        name, db = table.name, table.args.get("db")
        schema = db.name if db is not None else ""
        if table.args.get("catalog") is not None:
            raise AdqlError(f"table {table.sql(dialect=ADQL)} not found")
        if not schema and _names_cte(table):
            continue
        found = catalog.get((schema.lower(), name.lower()))
        if found is None:
            shown = f"{schema}.{name}" if schema else name
            raise AdqlError(f"table {shown} not found: query TAP_SCHEMA.tables for the published tables")
        alias = table.alias
        table.set("this", exp.to_identifier(found.pg_name, quoted=True))
        table.set("db", exp.to_identifier(found.pg_schema, quoted=True))
        scope[(alias or name).lower()] = found
        scope.setdefault(found.pg_name.lower(), found)
    for column in root.find_all(exp.Column):
        db = column.args.get("db")
        if db is not None:
            found = catalog.get((db.name.lower(), column.table.lower()))
            if found is None:
                raise AdqlError(f"table {db.name}.{column.table} not found")
            column.set("db", None)
            column.set("table", exp.to_identifier(found.pg_name, quoted=True))
    return scope


def _column_metadata(root: exp.Expression, scope: dict[str, published.Table]) -> dict[str, published.Column]:
    """Declared metadata of the output columns that are plain references to published columns."""
    select = root
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return {}
    tables = list(dict.fromkeys(scope.values()))
    out: dict[str, published.Column] = {}

    def find(col: str, qualifier: str) -> published.Column | None:
        candidates = [scope[qualifier.lower()]] if qualifier and qualifier.lower() in scope else tables
        for t in candidates:
            for c in t.columns:
                if c.bare == col or (c.bare == col.lower() and c.bare.islower()):
                    return c
        return None

    for item in select.expressions:
        target = item.this if isinstance(item, exp.Alias) else item
        if isinstance(target, exp.Star) or (isinstance(target, exp.Column) and isinstance(target.this, exp.Star)):
            qualifier = target.table if isinstance(target, exp.Column) else ""
            for t in ([scope[qualifier.lower()]] if qualifier and qualifier.lower() in scope else tables):
                for c in t.columns:
                    out.setdefault(c.bare.lower(), c)
        elif isinstance(target, exp.Column):
            found = find(target.name, target.table)
            if found is not None:
                out.setdefault(item.alias_or_name.lower(), found)
    return out


def _syntax_message(exc: sqlglot.errors.ParseError) -> str:
    if not exc.errors:
        return "ADQL syntax error"
    err = exc.errors[0]
    text = re.sub(r"<Token token_type: TokenType\.(\w+), text: ([^,]*),.*?>",
                  lambda m: "the end of the query" if m.group(1) == "SENTINEL" else repr(m.group(2)),
                  err.get("description", "syntax error"))
    near = (err.get("highlight") or "").strip()
    where = f" near {near!r}" if near else ""
    return f"ADQL syntax error at line {err.get('line')}, column {err.get('col')}{where}: {text}"


def parse(adql: str) -> exp.Expression:
    """The single SELECT of `adql` as a sqlglot tree; AdqlError for anything else."""
    if not adql or not adql.strip():
        raise AdqlError("QUERY is empty")
    if len(adql) > MAX_QUERY_CHARS:
        raise AdqlError(f"QUERY is longer than {MAX_QUERY_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(adql, read=ADQL) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise AdqlError(_syntax_message(exc)) from None
    except sqlglot.errors.SqlglotError as exc:
        raise AdqlError(f"ADQL syntax error: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise AdqlError("one statement per query: remove the ';' and what follows it")
    root = statements[0]
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        raise AdqlError("only SELECT queries are allowed")
    return root


def translate(adql: str, limit: int | None = None, uploads: tuple[published.Table, ...] = ()) -> Translation:
    """PostgreSQL for one ADQL query; `limit` caps the rows (the caller passes MAXREC + 1 to see overflow).

    `uploads` are the TAP_UPLOAD tables of this query (see `upload`), resolved beside the published ones.
    """
    reuse = not uploads and len(adql) <= MAX_QUERY_CHARS  # a shape's tables must not depend on the request
    if reuse and (kept := shapes.lookup(adql, limit, ADQL)) is not None:
        sql, columns, params = kept
        return Translation(sql, columns, params or None)
    try:
        translation = _translate(adql, limit, uploads)
    except RecursionError:  # the parser and the SQL generator recurse once per level of nesting
        raise AdqlError("the query is nested too deeply (parentheses, NOT or subqueries)") from None
    if reuse:
        shapes.remember(adql, limit, ADQL, translation.sql, translation.columns, translation.params or {})
    return translation


def _translate(adql: str, limit: int | None, uploads: tuple[published.Table, ...]) -> Translation:
    root = parse(adql)
    _check(root)
    catalog = {**_catalog(), **{(t.schema.lower(), t.name.split(".")[-1].lower()): t for t in uploads}}
    scope = _tables(root, catalog)
    columns = _column_metadata(root, scope)
    root = root.transform(_geometry, copy=False).transform(_functions, copy=False)
    leftover = [n for n in root.find_all(exp.Anonymous) if n.name.lower() in ("point", "circle", "polygon", "box")]
    if leftover:
        raise AdqlError(f"{leftover[0].name.upper()} can only be used inside CONTAINS, INTERSECTS, DISTANCE "
                        "or COORD1/COORD2")
    if limit is not None:
        root = _cap(root, limit)
    sql = root.sql(dialect="postgres")
    if "%" not in sql:  # a '%' of the query's own would need escaping: keep such queries literal
        params = _parametrise(root)
        if params:
            return Translation(root.sql(dialect="postgres"), columns, params)
    return Translation(sql, columns)


Q3C_FUNCS = ("q3c_radial_query", "q3c_poly_query", "q3c_dist", "q3c_join")


def _parametrise(root: exp.Expression) -> dict[str, float]:
    """Turn the numbers given to q3c functions into parameters, so every cone search has the same text.

    The same text lets each connection prepare the statement once (parse and view rewrite are then
    cached); the plan is still made for each call's values (plan_cache_mode=force_custom_plan).
    """
    params: dict[str, float] = {}
    for call in list(root.find_all(exp.Anonymous)):
        if call.name.lower() not in Q3C_FUNCS:
            continue
        for lit in list(call.find_all(exp.Literal)):
            if lit.is_string:
                continue
            node, value = lit, float(lit.name)
            if isinstance(lit.parent, exp.Neg):
                node, value = lit.parent, -value
            name = f"p{len(params)}"
            params[name] = value
            node.replace(exp.Placeholder(this=name))
    return params


def _cap(root: exp.Expression, limit: int) -> exp.Expression:
    """Apply the row cap: LIMIT min(TOP or LIMIT given, limit)."""
    current = root.args.get("limit")
    if isinstance(current, exp.Limit):
        value = current.expression
        if isinstance(value, exp.Literal) and not value.is_string:
            given = float(value.name)
            if math.isfinite(given) and given <= limit:
                return root
    elif current is not None:
        raise AdqlError("LIMIT must be a number")
    if isinstance(root, exp.SetOperation):
        return exp.select("*").from_(exp.Subquery(this=root, alias=exp.TableAlias(this=exp.to_identifier("q"))))\
            .limit(limit)
    return root.limit(limit)
