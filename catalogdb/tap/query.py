"""Running translated ADQL: as the read-only role, in a read-only transaction, with a timeout and a row cap.

Rows come from a server-side cursor in batches, so a large result never sits whole in memory.
Database errors become one readable line (no SQL text, no traceback).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from catalogdb.db.published import READER_ROLE
from catalogdb.tap import adql, upload
from catalogdb.writers import Field, ResultStatus, fields_for

log = logging.getLogger("catalogdb.tap")


KIB, MIB, GIB = 1024, 1024**2, 1024**3


@dataclass(frozen=True)
class TapConfig:
    """Limits of the service, in one place (environment: CATALOGDB_TAP_*); the unit ends each name.

    Bytes of results are counted as PostgreSQL holds the rows (pg_column_size of each row), before
    serialisation. The reader role's temp_file_limit (temporary disk per query) is a role setting of the
    database, made by migration 0020.
    """

    sync_timeout_s: float = 60.0  # a whole sync query, first row to last
    async_timeout_s: int = 3600  # the longest EXECUTIONDURATION of a job
    default_maxrec: int = 100_000  # rows, when MAXREC is not given
    hard_maxrec: int = 2_000_000  # rows, whatever MAXREC says
    retention_s: int = 7 * 24 * 3600  # a new job's DESTRUCTION is this far ahead
    max_destruction_s: int = 30 * 24 * 3600  # the latest DESTRUCTION a client may ask for, from now
    async_workers: int = 2
    batch_rows: int = 5000  # rows fetched at once, at most
    pool_size: int = 8  # reader connections kept (as many again may be opened)
    upload: upload.UploadLimits = upload.UploadLimits()  # TAP_UPLOAD tables: rows and bytes
    pool_wait_s: float = 5.0  # wait for a free reader connection before answering 503
    # How a reader connection is reset when it goes back to the pool. "commit" ends the read-only transaction
    # and keeps the connection's prepared cone search; "rollback" makes psycopg run DEALLOCATE ALL, so every
    # request prepares again (two more round trips): only for poolers that cannot keep prepared statements.
    pool_reset: str = "commit"
    retry_after_s: int = 10  # Retry-After of a 503
    row_bytes: int = 64 * KIB  # one result row
    batch_bytes: int = 256 * MIB  # rows held at once: a fetch (batch_bytes / row_bytes rows), a cone's result
    result_bytes: int = 1 * GIB  # one result
    request_bytes: int = 16 * MIB  # one request body
    parameter_bytes: int = 1 * MIB  # the parameters of one job (names and values, UTF-8)
    max_jobs: int = 1000  # jobs kept at once (any phase)
    result_storage_bytes: int = 10 * GIB  # stored job results, all together; the oldest go first
    base_url: str | None = None  # the URL clients reach /tap at; None: that of the request
    trusted_proxies: str = ""  # comma-separated addresses whose X-Forwarded-* headers are believed

    @classmethod
    def from_env(cls) -> TapConfig:
        """Defaults overridden by CATALOGDB_TAP_<FIELD NAME WITHOUT ITS UNIT> (e.g. CATALOGDB_TAP_SYNC_TIMEOUT)."""
        d = cls()
        values = {}
        for f in fields(cls):
            if f.name == "upload":
                values["upload"] = upload.UploadLimits.from_env()
                continue
            name = "CATALOGDB_TAP_" + f.name.upper().removesuffix("_S")
            raw = os.environ.get(name)
            if raw is not None:
                kind = type(getattr(d, f.name)) if getattr(d, f.name) is not None else str
                values[f.name] = kind(raw)
        return cls(**values)

    @property
    def fetch_rows(self) -> int:
        """Rows per fetch of a server-side cursor: batch_rows, fewer where rows of row_bytes would pass batch_bytes."""
        return max(1, min(self.batch_rows, self.batch_bytes // self.row_bytes))


class QueryError(Exception):
    """A query that failed in the database; the message is safe to show."""


def public_message(exc: psycopg.Error, timeout_s: float) -> str:
    """One line for the user: the primary message for query mistakes, a generic line otherwise."""
    state = exc.sqlstate or ""
    if state == "57014":
        return timeout_message(timeout_s)
    if state == "25006":
        return "the service is read-only"
    if state.startswith("42501"):
        return "permission denied"
    if state[:2] in ("22", "42", "21", "2F", "39", "0A", "54") or state == "53400":  # 53400: temp_file_limit
        primary = (exc.diag.message_primary or "query failed").splitlines()[0]
        return primary
    if state[:2] in ("08", "57", "53"):
        return "the database is not available right now; try again later"
    return f"query failed (SQLSTATE {state or 'unknown'})"


def timeout_message(timeout_s: float) -> str:
    """The error of a query stopped by its time limit."""
    return f"query cancelled: it ran longer than the {timeout_s:g} s time limit"


# The role's own settings (temp_file_limit of migration 0020), which a login applies and SET ROLE does not.
ROLE_SETTINGS = f"""
select split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)
from pg_db_role_setting s, unnest(s.setconfig) c
where s.setrole = '{READER_ROLE}'::regrole and s.setdatabase in (0, (select oid from pg_database
                                                                       where datname = current_database()))
order by s.setdatabase"""


def _reader_engine(url: str, config: TapConfig) -> Engine:
    """An engine that logs in as the reader role, or (where it cannot) switches to it on every connection."""
    # No pre-ping (a round trip per query): a connection that broke is invalidated when it fails.
    kw = dict(pool_size=config.pool_size, max_overflow=config.pool_size, pool_pre_ping=False, pool_recycle=3600,
              pool_reset_on_return=config.pool_reset,
              pool_timeout=config.pool_wait_s, connect_args={"connect_timeout": max(2, int(config.pool_wait_s))})
    as_reader = make_url(url).set(username=READER_ROLE, password=os.environ.get("CATALOGDB_READER_PASSWORD"))
    engine = _session_engine(as_reader, False, kw)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        engine.dispose()
        engine = _session_engine(make_url(url), True, kw)
        log.info("cannot log in as %s; the service switches to it with SET ROLE", READER_ROLE)
    return engine


def _session_engine(url: sa.URL, set_role: bool, kw: dict) -> Engine:
    """An engine whose every connection (the first included) is read-only, as the reader role."""
    engine = sa.create_engine(url, **kw)

    @sa.event.listens_for(engine, "connect")
    def _readonly(dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cur:
            if set_role:
                for name, value in cur.execute(ROLE_SETTINGS).fetchall():
                    try:
                        cur.execute("select set_config(%s, %s, false)", (name, value))
                    except psycopg.errors.InsufficientPrivilege:
                        dbapi_conn.rollback()
                        log.warning("cannot apply %s=%s of %s over SET ROLE", name, value, READER_ROLE)
                cur.execute(f"SET ROLE {READER_ROLE}")
            cur.execute("SET default_transaction_read_only = on")
            cur.execute("SET application_name = 'catalogdb tap'")
            # Prepared cone searches keep their parse and view rewrite, never a generic plan (whose q3c
            # ranges cannot use the index well).
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    return engine


class Runner:
    """Runs ADQL against one database with the service's limits; can cancel every query it runs."""

    def __init__(self, url: str, config: TapConfig):
        self.config = config
        self.reader = _reader_engine(url, config)
        self._running: set[psycopg.Connection] = set()
        self._lock = threading.Lock()

    def maxrec(self, requested: int | None) -> int:
        """The row cap for a request: MAXREC when given, the default otherwise, never above the hard limit."""
        return min(self.config.default_maxrec if requested is None else requested, self.config.hard_maxrec)

    def open(self, query: str, maxrec: int, timeout_s: float, uploads: Sequence[upload.Upload] = (),
             started: Callable[[psycopg.Connection], None] | None = None) -> Result:
        """Translate and start the query (with its TAP_UPLOAD tables); QueryError/AdqlError before any row is sent.

        `started` gets the connection before the query is sent, so that its query can be cancelled
        (psycopg's Connection.cancel) from the first moment; it may raise to stop before the query runs.
        The time limit covers the whole query: every later fetch gets only the time left.
        """
        deadline = time.monotonic() + timeout_s
        translation = adql.translate(query, limit=maxrec + 1, uploads=tuple(u.table for u in uploads))
        cone = translation.params is not None and maxrec <= self.config.default_maxrec and not uploads
        cfg = self.config
        # Every row passes tap_result_bytes (migration 0020), which stops a row or a result too large. A cone's
        # rows are all held by libpq, so its whole result is capped at batch_bytes.
        sql = (f"SELECT * FROM ({translation.sql}) AS tap_result WHERE public.tap_result_bytes("
               f"pg_column_size(tap_result.*), {cfg.row_bytes}, {cfg.batch_bytes if cone else cfg.result_bytes})")
        raw = self.reader.raw_connection()
        conn: psycopg.Connection = raw.driver_connection
        try:
            with self._lock:
                self._running.add(conn)
            if started is not None:
                started(conn)
            if uploads:
                upload.create(conn, uploads)
            # The SET rides in the same round trip as the query for cone searches (pipeline below).
            timeout_sql = f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}"
            if cone:
                # Cone searches: one prepared statement per connection; rows held by libpq (capped by
                # MAXREC and batch_bytes) and turned into Python batch by batch.
                cursor = conn.cursor()
                with conn.pipeline():
                    cursor.execute(timeout_sql)
                    cursor.execute(sql, translation.params, prepare=True)
                batch_rows = cfg.batch_rows
            else:
                conn.execute(timeout_sql)
                cursor = conn.cursor(name="tap_result")
                cursor.execute(sql, translation.params)
                batch_rows = cfg.fetch_rows
            first = cursor.fetchmany(batch_rows)
        except psycopg.Error as exc:
            self._release(conn)
            if conn.closed or conn.broken:
                raw.invalidate()
                if isinstance(exc, psycopg.OperationalError):
                    raise  # the database went away: 503, and the pool reconnects next time
            raw.close()
            raise QueryError(public_message(exc, timeout_s)) from None
        except BaseException:
            self._release(conn)
            raw.close()
            raise
        fields = fields_for(cursor.description, translation.columns)
        return Result(self, fields, raw, cursor, first, maxrec, timeout_s, deadline, batch_rows, server_side=not cone)

    def ping(self) -> bool:
        """Whether the database answers, on a new connection (not the pool's) with a short time limit."""
        conninfo = self.reader.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(conninfo, connect_timeout=2, options="-c statement_timeout=2000") as conn:
                conn.execute("select 1")
            return True
        except psycopg.Error:
            return False

    def _release(self, conn: psycopg.Connection) -> None:
        with self._lock:
            self._running.discard(conn)

    def cancel_all(self) -> int:
        """Cancel every query running now (server stop); returns how many."""
        with self._lock:
            running = list(self._running)
        for conn in running:
            cancel(conn)
        return len(running)

    def close(self) -> None:
        """Cancel the running queries and close the pooled connections."""
        self.cancel_all()
        self.reader.dispose()


def cancel(conn: psycopg.Connection) -> None:
    """Ask the server to cancel what the connection runs now (nothing if it runs nothing)."""
    try:
        conn.cancel_safe(timeout=5)
    except psycopg.Error:
        log.warning("could not cancel a running query")


class Result:
    """An open result: its fields, and its rows in batches (at most maxrec; `status` says if more existed)."""

    def __init__(self, runner: Runner, fields: list[Field], raw, cursor, first: list[tuple], maxrec: int,
                 timeout_s: float, deadline: float, batch_rows: int, server_side: bool):
        self.fields = fields
        self.status = ResultStatus()
        self._runner, self._raw, self._cursor, self._first = runner, raw, cursor, first
        self._maxrec, self._timeout, self._deadline, self._batch = maxrec, timeout_s, deadline, batch_rows
        self._server_side = server_side

    @property
    def in_hand(self) -> bool:
        """Whether every row is already here: a client-side cursor whose first batch was not full."""
        return not self._server_side and len(self._first) < self._batch

    def batches(self) -> Iterator[list[tuple]]:
        """The rows, batch by batch; a failure after the first batch goes to status.error."""
        try:
            batch = self._first
            while batch:
                room = self._maxrec - self.status.rows
                if len(batch) > room:
                    self.status.overflow = True
                    batch = batch[:room]
                self.status.rows += len(batch)
                if batch:
                    yield batch
                if self.status.overflow:
                    break
                batch = self._fetch()
        except psycopg.Error as exc:
            self.status.error = public_message(exc, self._timeout)
        finally:
            self.close()

    def _fetch(self) -> list[tuple]:
        """The next batch, within the time left of the query's limit."""
        if self._server_side:
            left_ms = int((self._deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                self.status.error = timeout_message(self._timeout)
                return []
            self._cursor.connection.execute(f"SET LOCAL statement_timeout = {left_ms}")
        return self._cursor.fetchmany(self._batch)

    def close(self) -> None:
        """Give the connection back (the pool ends the read-only transaction: TapConfig.pool_reset)."""
        if self._raw is not None:
            raw, self._raw = self._raw, None
            self._runner._release(raw.driver_connection)
            try:
                self._cursor.close()
                raw.close()
            except psycopg.Error:
                raw.invalidate()
