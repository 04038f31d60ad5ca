"""`catalogdb serve`: an IVOA TAP 1.1 service (Starlette on uvicorn) at /tap.

/sync, /async (UWS 1.1, jobs in the database), /capabilities, /availability, /tables (VOSI) and
TAP_SCHEMA through ADQL. Every failure a client can cause is answered with a TAP error VOTable
(`<INFO name="QUERY_STATUS" value="ERROR">message</INFO>`), never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from catalogdb.errors import CatalogdbError
from catalogdb.tap import datalink, scs, upload, uws, vosi
from catalogdb.tap.adql import AdqlError
from catalogdb.tap.output import render
from catalogdb.tap.query import QueryError, Runner, TapConfig
from catalogdb.tap.request import TapParams, TapRequestError
from catalogdb.writers.votable import error_document

log = logging.getLogger("catalogdb.tap")
VOTABLE_TYPE = "application/x-votable+xml"
XML_TYPE = "text/xml"
MAX_WAIT_S = 60.0
CLEANUP_EVERY_S = 300.0


def error_response(message: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    """A TAP error document."""
    return Response(error_document(message), status_code=status, media_type=VOTABLE_TYPE, headers=headers)


class BodyTooLarge(TapRequestError):
    """A request body longer than the limit (413)."""

    status = 413


class BodyLimit:
    """ASGI middleware: a request body is refused (413) once it passes `limit` bytes, before it is read whole."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        """Pass the request on with a `receive` that counts the body's bytes."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"the request body is larger than the limit of {self.limit} bytes"
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            return await error_response(message, 413)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            event = await receive()
            seen += len(event.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(message)
            return event

        return await self.app(scope, counted, send)


async def params_of(request: Request) -> dict[str, str]:
    """Query-string and form parameters with lower-cased names (the last value of a name wins)."""
    out = {k.lower(): v for k, v in request.query_params.multi_items()}
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form()
            except BodyTooLarge:
                raise
            except Exception:  # noqa: BLE001 - a broken body is the client's error
                raise TapRequestError("the request body is not a valid form") from None
            for k, v in form.multi_items():
                if isinstance(v, str):
                    out[k.lower()] = v
    for k, v in out.items():
        if "\0" in k or "\0" in v:
            raise TapRequestError(f"parameter {k.upper()!r} contains a NUL character")
    return out


def seconds(name: str, text: str) -> float:
    """A parameter that is a finite number of seconds (EXECUTIONDURATION, WAIT)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TapRequestError(f"{name} must be a finite number of seconds, not {text!r}")
    return value


class Service:
    """The state the routes share: configuration, engines, runner and job store."""

    def __init__(self, url: str, config: TapConfig):
        self.config = config
        self.owner = sa.create_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True)
        self.runner = Runner(url, config)
        self.jobs = uws.JobStore(self.owner, self.runner)

    def close(self) -> None:
        """Stop the job workers and close the connection pools."""
        self.jobs.shutdown()
        self.runner.close()
        self.owner.dispose()


def _base(request: Request) -> str:
    """The service's URL: the configured one; the request's own (its Host header) only where none is."""
    base = _service(request).config.base_url
    return base.rstrip("/") if base else str(request.url_for("tap_root")).rstrip("/")


def _root(request: Request) -> str:
    """The server's base URL, that of the service without /tap (DataLink and cone search live beside it)."""
    return _base(request).removesuffix("/tap")


def _service(request: Request) -> Service:
    return request.app.state.service


# --- sync ----------------------------------------------------------------------------------------------


async def sync(request: Request) -> Response:
    """TAP /sync: run the query and stream the result."""
    service = _service(request)
    raw_params = await params_of(request)
    params = TapParams.from_dict(raw_params)
    params.check()
    limits = service.config.upload
    sources = await upload.request_tables(request, raw_params, limits)
    tables = await run_in_threadpool(upload.parse_all, sources, limits) if sources else []
    runner, root = service.runner, _root(request)

    def run() -> tuple[str, bytes | Iterator[bytes]]:
        result = runner.open(params.query, runner.maxrec(params.maxrec), service.config.sync_timeout_s, tables)
        content_type, chunks = render(result, params, root)
        # A result that is one batch in hand (a cone search, mostly) is written here, in the same thread hop:
        # streaming it would cost a hop per chunk for nothing.
        return content_type, b"".join(chunks) if result.in_hand else chunks

    content_type, body = await run_in_threadpool(run)
    if isinstance(body, bytes):
        return Response(body, media_type=content_type)
    return StreamingResponse(body, media_type=content_type)


# --- async (UWS) ---------------------------------------------------------------------------------------


def _job_url(request: Request, job_id: str) -> str:
    return f"{_base(request)}/async/{job_id}"


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


async def _job(request: Request) -> uws.Job:
    job_id = request.path_params["job_id"]
    job = None
    if uws.JOB_ID.fullmatch(job_id):
        job = await run_in_threadpool(_service(request).jobs.get, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id[:40]}")
    return job


async def async_list(request: Request) -> Response:
    """GET /async: the job list; POST /async: create a job (PHASE=RUN starts it), 303 to the job."""
    store = _service(request).jobs
    params = await params_of(request)
    if request.method == "POST":
        config = _service(request).config
        times = {}
        if "destruction" in params:
            times["destruction"] = destruction(config, params["destruction"])
        if "executionduration" in params:
            times["execution_duration"] = execution_duration(config, params["executionduration"])
        tables = await upload.request_tables(request, params, config.upload)
        await run_in_threadpool(upload.parse_all, tables, config.upload)  # a malformed upload is refused now
        job_id = await run_in_threadpool(store.create, params, tables, _root(request))
        if times:
            await run_in_threadpool(lambda: store.update(job_id, **times))
        if params.get("phase", "").upper() == "RUN":
            await run_in_threadpool(store.run, job_id)
        return _see_other(_job_url(request, job_id))
    phases = [v.upper() for k, v in request.query_params.multi_items() if k.lower() == "phase"]
    if any(p not in uws.PHASES for p in phases):
        raise TapRequestError(f"PHASE must be one of {', '.join(uws.PHASES)}")
    after = last = None
    try:
        if "after" in params:
            after = uws.parse_time(params["after"])
        if "last" in params:
            last = min(int(params["last"]), _service(request).config.max_jobs)
            if last <= 0:
                raise ValueError
    except ValueError:
        raise TapRequestError("AFTER must be an ISO 8601 time and LAST a positive whole number") from None
    jobs = await run_in_threadpool(store.find, phases, after, last)
    return Response(uws.jobs_xml(jobs, f"{_base(request)}/async"), media_type=XML_TYPE)


async def _wait(request: Request, job: uws.Job) -> uws.Job:
    """UWS 1.1 blocking: hold the GET while the job stays in an active phase (or the PHASE given)."""
    raw = request.query_params.get("WAIT") or request.query_params.get("wait")
    if raw is None:
        return job
    wait = seconds("WAIT", raw)
    wait = MAX_WAIT_S if wait < 0 else min(wait, MAX_WAIT_S)
    phase = (request.query_params.get("PHASE") or request.query_params.get("phase") or job.phase).upper()
    if job.phase != phase or job.phase not in ("PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED"):
        return job
    loop = asyncio.get_running_loop()
    end = loop.time() + wait
    delay = 0.02
    while loop.time() < end:
        await asyncio.sleep(min(delay, max(end - loop.time(), 0)))
        delay = min(delay * 1.5, 0.5)
        job = await _job(request)
        if job.phase != phase:
            break
    return job


async def job(request: Request) -> Response:
    """GET: the job document (WAIT blocks); POST: ACTION=DELETE, PHASE, DESTRUCTION, parameters; DELETE."""
    store = _service(request).jobs
    current = await _job(request)
    if request.method == "DELETE":
        await run_in_threadpool(store.delete, current.job_id)
        return _see_other(f"{_base(request)}/async")
    if request.method == "POST":
        params = await params_of(request)
        if params.get("action", "").upper() == "DELETE":
            await run_in_threadpool(store.delete, current.job_id)
            return _see_other(f"{_base(request)}/async")
        await _apply(request, current, params)
        return _see_other(_job_url(request, current.job_id))
    current = await _wait(request, current)
    return Response(uws.job_xml(current, _job_url(request, current.job_id)), media_type=XML_TYPE)


def destruction(config: TapConfig, text: str) -> datetime:
    """DESTRUCTION: an ISO 8601 time from now to max_destruction_s ahead."""
    try:
        when = uws.parse_time(text)
    except ValueError:
        raise TapRequestError("DESTRUCTION must be an ISO 8601 time") from None
    now = datetime.now(UTC)
    latest = now + timedelta(seconds=config.max_destruction_s)
    if not now <= when <= latest:
        raise TapRequestError(f"DESTRUCTION must lie between now and {uws.iso(latest)}, not {text[:40]!r}")
    return when


def execution_duration(config: TapConfig, text: str) -> int:
    """EXECUTIONDURATION in whole seconds: at most the service's limit, which 0 or less also asks for."""
    duration = seconds("EXECUTIONDURATION", text)
    return config.async_timeout_s if duration <= 0 else int(min(duration, config.async_timeout_s))


async def _apply(request: Request, current: uws.Job, params: dict[str, str]) -> None:
    store = _service(request).jobs
    config = _service(request).config
    if "destruction" in params:
        when = destruction(config, params["destruction"])
        await run_in_threadpool(store.update, current.job_id, destruction=when)
    if "executionduration" in params:
        duration = execution_duration(config, params["executionduration"])
        await run_in_threadpool(store.update, current.job_id, execution_duration=duration)
    query_params = {k: v for k, v in params.items() if k not in ("phase", "destruction", "executionduration")}
    if query_params:
        if current.phase != "PENDING":
            raise TapRequestError(f"the job is {current.phase}: parameters can only change while it is PENDING")
        await run_in_threadpool(store.set_parameters, current, query_params)
    phase = params.get("phase", "").upper()
    if phase == "RUN":
        await run_in_threadpool(store.run, current.job_id)
    elif phase == "ABORT":
        await run_in_threadpool(store.abort, current.job_id)
    elif phase:
        raise TapRequestError(f"PHASE={params['phase']} is not accepted (RUN or ABORT)")


async def job_phase(request: Request) -> Response:
    """GET: the phase as text; POST PHASE=RUN|ABORT, 303 to the job."""
    current = await _job(request)
    if request.method == "POST":
        params = await params_of(request)
        if params.get("phase", "").upper() not in ("RUN", "ABORT"):
            raise TapRequestError("PHASE must be RUN or ABORT")
        await _apply(request, current, {"phase": params["phase"]})
        return _see_other(_job_url(request, current.job_id))
    return PlainTextResponse(current.phase)


async def job_value(request: Request) -> Response:
    """executionduration, destruction, quote, owner: GET the value as text; POST the first two."""
    name = request.path_params["name"]
    if name not in ("executionduration", "destruction", "quote", "owner"):
        raise HTTPException(404, f"no such job resource: {name[:40]}")
    current = await _job(request)
    if request.method == "POST":
        if name not in ("executionduration", "destruction"):
            raise HTTPException(405)
        params = await params_of(request)
        if name not in params:
            raise TapRequestError(f"{name.upper()} is required")
        await _apply(request, current, {name: params[name]})
        return _see_other(_job_url(request, current.job_id))
    value = {"executionduration": str(current.execution_duration), "destruction": uws.iso(current.destruction),
             "quote": "", "owner": current.owner or ""}[name]
    return PlainTextResponse(value or "")


async def job_parameters(request: Request) -> Response:
    """The job's parameters (GET) or new ones for a PENDING job (POST)."""
    current = await _job(request)
    if request.method == "POST":
        await _apply(request, current, await params_of(request))
        return _see_other(_job_url(request, current.job_id))
    xml = uws.job_xml(current, _job_url(request, current.job_id))
    start, end = xml.index("<uws:parameters>"), xml.index("</uws:parameters>") + len("</uws:parameters>")
    ns = f'xmlns:uws="{uws.UWS_NS}" xmlns:xlink="{uws.XLINK_NS}" xmlns:xsi="{uws.XSI_NS}"'
    return Response(xml[start:end].replace("<uws:parameters>", f"<uws:parameters {ns}>", 1), media_type=XML_TYPE)


async def job_results(request: Request) -> Response:
    """The results list."""
    current = await _job(request)
    xml = uws.job_xml(current, _job_url(request, current.job_id))
    start, end = xml.index("<uws:results>"), xml.index("</uws:results>") + len("</uws:results>")
    ns = f'xmlns:uws="{uws.UWS_NS}" xmlns:xlink="{uws.XLINK_NS}" xmlns:xsi="{uws.XSI_NS}"'
    return Response(xml[start:end].replace("<uws:results>", f"<uws:results {ns}>", 1), media_type=XML_TYPE)


async def job_result(request: Request) -> Response:
    """The stored result of a COMPLETED job."""
    current = await _job(request)
    if current.phase != "COMPLETED":
        raise HTTPException(404, f"job {current.job_id} is {current.phase}: no result")
    store = _service(request).jobs
    return StreamingResponse(store.results(current.job_id), media_type=current.content_type or VOTABLE_TYPE)


async def job_error(request: Request) -> Response:
    """The error document of a job in ERROR."""
    current = await _job(request)
    if current.phase != "ERROR":
        raise HTTPException(404, f"job {current.job_id} is {current.phase}: no error")
    return error_response(current.error_message or "error", 200)


# --- VOSI and the rest --------------------------------------------------------------------------------


async def capabilities(request: Request) -> Response:
    """VOSI capabilities."""
    return Response(vosi.capabilities(_base(request), _service(request).config, _root(request)),
                    media_type=XML_TYPE)


async def availability(request: Request) -> Response:
    """VOSI availability: the database answers (on a connection of its own, so a full pool does not delay it)."""
    up = await run_in_threadpool(_service(request).runner.ping)
    note = "service is accepting queries" if up else "the database does not answer"
    return Response(vosi.availability(up, note), media_type=XML_TYPE)


async def tables(request: Request) -> Response:
    """VOSI tables (detail=min leaves out columns), and /tables/{name} for one table."""
    # astroquery's table parser needs an ESA attribute that the VODataService schema does not allow; its
    # GET requests carry no User-Agent, unlike pyvo, TOPCAT and taplint, which get the schema-valid document.
    agent = request.headers.get("user-agent", "")
    esa = not agent or agent.startswith("astroquery/")

    def read() -> str | None:
        with _service(request).runner.reader.connect() as conn:
            name = request.path_params.get("name")
            if name is not None:
                return vosi.table(conn, name, esa)
            return vosi.tableset(conn, request.query_params.get("detail", "max").lower(), esa)

    xml = await run_in_threadpool(read)
    if xml is None:
        raise HTTPException(404, f"no table {request.path_params.get('name')}")
    return Response(xml, media_type=XML_TYPE)


async def root(request: Request) -> Response:
    """A page saying where the service is."""
    base = _base(request)
    links = "".join(f'<li><a href="{base}/{p}">{p}</a></li>' for p in ("capabilities", "availability", "tables"))
    return HTMLResponse(f"<html><body><h1>catalogdb TAP service</h1><p>TAP 1.1 base URL: {base}</p>"
                        f"<ul>{links}</ul></body></html>")


async def tap_error(request: Request, exc: Exception) -> Response:
    """Every error becomes a TAP error VOTable with a status that fits it."""
    retry = {"Retry-After": str(_service(request).config.retry_after_s)}
    if isinstance(exc, (TapRequestError, AdqlError, QueryError)):
        return error_response(str(exc), getattr(exc, "status", 400))
    if isinstance(exc, HTTPException):
        return error_response(exc.detail or "not found", exc.status_code)
    if isinstance(exc, uws.QuotaError):
        return error_response(str(exc), 429, retry)
    if isinstance(exc, sa.exc.TimeoutError):
        return error_response("all connections to the database are busy; try again later", 503, retry)
    if isinstance(exc, (sa.exc.OperationalError, psycopg.OperationalError)):
        return error_response("the database is not available right now; try again later", 503, retry)
    log.exception("unexpected error for %s %s", request.method, request.url.path)
    return error_response("internal error of the TAP service", 500)


def create_app(url: str, config: TapConfig | None = None) -> Starlette:
    """The ASGI application serving the database at `url`."""
    config = config or TapConfig.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        service = Service(url, config)
        app.state.service = service
        resumed = await run_in_threadpool(service.jobs.resume)
        if resumed:
            log.info("queued again %d job(s) left by the previous server", resumed)

        async def cleanup() -> None:
            while True:
                try:
                    await run_in_threadpool(service.jobs.cleanup)
                except sa.exc.DBAPIError:
                    log.warning("job clean-up failed; retrying later")
                await asyncio.sleep(CLEANUP_EVERY_S)

        task = asyncio.create_task(cleanup())
        try:
            yield
        finally:
            task.cancel()
            service.close()

    methods = ["GET", "POST"]
    routes = [
        Route("/", lambda r: RedirectResponse(str(r.url_for("tap_root")))),
        Route("/tap", root, name="tap_root"),
        Route("/tap/sync", sync, methods=methods),
        Route("/tap/async", async_list, methods=methods),
        Route("/tap/async/{job_id}", job, methods=[*methods, "DELETE"]),
        Route("/tap/async/{job_id}/phase", job_phase, methods=methods),
        Route("/tap/async/{job_id}/parameters", job_parameters, methods=methods),
        Route("/tap/async/{job_id}/results", job_results),
        Route("/tap/async/{job_id}/results/result", job_result),
        Route("/tap/async/{job_id}/error", job_error),
        Route("/tap/async/{job_id}/{name:str}", job_value, methods=methods),
        Route("/tap/capabilities", capabilities),
        Route("/tap/availability", availability),
        Route("/tap/tables", tables),
        Route("/tap/tables/{name:str}", tables),
        *datalink.routes(),
        *scs.routes(),
    ]
    # Every expected failure has its own handler, so it is answered without closing the connection (the one
    # for Exception, a 500, goes through Starlette's ServerErrorMiddleware, which closes it).
    expected = (HTTPException, TapRequestError, AdqlError, QueryError, uws.QuotaError, sa.exc.TimeoutError,
                sa.exc.OperationalError, psycopg.OperationalError)
    handlers = {Exception: tap_error, **dict.fromkeys(expected, tap_error)}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan,
                     middleware=[Middleware(BodyLimit, limit=config.request_bytes)])


def check_database(url: str) -> None:
    """Refuse to serve a database without the TAP tables (migration 0006)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ok = conn.execute(sa.text("select to_regclass('tap_job') is not null")).scalar()
    finally:
        engine.dispose()
    if not ok:
        raise CatalogdbError("the database has no TAP tables: run `catalogdb db init` (or `db upgrade`) first")


def serve(host: str = "127.0.0.1", port: int = 8080, url: str | None = None) -> None:
    """Run the TAP service on uvicorn until interrupted."""
    import uvicorn

    from catalogdb.db.server import engine

    url = url or engine().url.render_as_string(hide_password=False)
    check_database(url)
    config = TapConfig.from_env()
    if config.base_url is None:
        named = socket.getfqdn() if host in ("0.0.0.0", "::", "") else host
        config = replace(config, base_url=f"http://{named}:{port}/tap")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.info("TAP service at %s (started %s)", config.base_url, datetime.now(UTC).isoformat())
    uvicorn.run(create_app(url, config), host=host, port=port, log_level="info", **proxy_options(config))


def proxy_options(config: TapConfig) -> dict:
    """uvicorn's options for X-Forwarded-For/-Proto: believed from the configured trusted proxies only."""
    trusted = [a.strip() for a in config.trusted_proxies.split(",") if a.strip()]
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
