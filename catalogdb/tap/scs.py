"""Simple Cone Search 1.03 on final_catalog: /scs?RA=&DEC=&SR=[&VERB=] for clients that only do cone searches.

The cone runs as the ADQL CONTAINS(POINT, CIRCLE) query the TAP service would run (q3c_join, the
reader role, the service's row cap and time limit), so both answer with the same rows. VERB=1 gives
obsid, ra and dec, VERB=2 (the default) the principal columns, VERB=3 all of them. The three columns
SCS 1.03 requires carry its UCD1 names (ID_MAIN, POS_EQ_RA_MAIN, POS_EQ_DEC_MAIN). Errors are a VOTable
with <INFO name="Error">, as SCS 1.03 asks, and HTTP 200.
"""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from catalogdb.db import published
from catalogdb.tap import datalink
from catalogdb.tap.adql import AdqlError
from catalogdb.tap.query import QueryError
from catalogdb.writers import Field
from catalogdb.writers.votable import VOTABLE_NS, votable, xml_attr, xml_text

STANDARD_ID = "ivo://ivoa.net/std/ConeSearch"
TABLE = "final_catalog"
SCS_UCDS = {"obsid": "ID_MAIN", "ra": "POS_EQ_RA_MAIN", "dec": "POS_EQ_DEC_MAIN"}
VOTABLE_TYPE = "text/xml"


class ConeError(Exception):
    """A cone search request that cannot be answered; the message names the parameter."""


def error_document(message: str) -> bytes:
    """An SCS 1.03 error VOTable."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VOTABLE version="1.4" xmlns="{VOTABLE_NS}">\n'
            f'<INFO ID="Error" name="Error" value={xml_attr(message)}/>\n'
            '<RESOURCE type="results">\n'
            f'<INFO name="QUERY_STATUS" value="ERROR">{xml_text(message)}</INFO>\n'
            "</RESOURCE>\n</VOTABLE>\n").encode()


def _number(params, name: str, low: float, high: float) -> float:
    raw = params.get(name)
    if raw is None or not raw.strip():
        raise ConeError(f"{name} is required (decimal degrees)")
    try:
        value = float(raw)
    except ValueError:
        raise ConeError(f"{name} must be a number of decimal degrees, not {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConeError(f"{name} must be between {low:g} and {high:g} degrees, not {raw}")
    return value


def columns(verb: int) -> list[str]:
    """The ADQL column names a VERB level returns."""
    table = next(t for t in published.declared_tables() if t.name == TABLE)
    if verb == 1:
        return ["obsid", "ra", "dec"]
    return [c.bare if c.bare.islower() else f'"{c.bare}"' for c in table.columns
            if verb == 3 or c.principal or c.bare in SCS_UCDS]


def query(params) -> str:
    """The ADQL of a cone search request."""
    upper = {k.upper(): v for k, v in params.items()}
    ra = _number(upper, "RA", 0.0, 360.0)
    dec = _number(upper, "DEC", -90.0, 90.0)
    sr = _number(upper, "SR", 0.0, 180.0)
    verb_raw = upper.get("VERB") or "2"
    if verb_raw.strip() not in ("1", "2", "3"):
        raise ConeError(f"VERB must be 1, 2 or 3, not {verb_raw!r}")
    return (f"SELECT {', '.join(columns(int(verb_raw)))} FROM {TABLE} WHERE "
            f"CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {sr!r})) = 1")


async def cone(request: Request) -> Response:
    """GET /scs: the final_catalog rows within SR degrees of (RA, DEC)."""
    service = request.app.state.service
    try:
        adql = query(request.query_params)
        runner = service.runner
        result = await run_in_threadpool(runner.open, adql, runner.maxrec(None), service.config.sync_timeout_s)
    except (ConeError, AdqlError, QueryError) as exc:
        return Response(error_document(str(exc)), media_type=VOTABLE_TYPE)
    fields, descriptor = datalink.descriptor(str(request.base_url), result.fields)
    fields = [Field(f.name, f.datatype, f.arraysize, f.xtype, f.unit, SCS_UCDS.get(f.name, f.ucd), f.description,
                    f.id) for f in fields]
    return StreamingResponse(votable(fields, result.batches(), result.status, resources=descriptor),
                             media_type=VOTABLE_TYPE)


def routes() -> list[Route]:
    """The cone search route."""
    return [Route("/scs", cone)]
