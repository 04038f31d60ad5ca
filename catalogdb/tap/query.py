"""Running translated ADQL: as the read-only role, in a read-only transaction, with a timeout and a row cap.

Rows come from a server-side cursor in batches, so a large result never sits whole in memory.
Database errors become one readable line (no SQL text, no traceback).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from catalogdb.db.published import READER_ROLE
from catalogdb.tap import adql, upload
from catalogdb.tap.votable import Field, ResultStatus, fields_for

log = logging.getLogger("catalogdb.tap")


@dataclass(frozen=True)
class TapConfig:
    """Limits of the service (environment: CATALOGDB_TAP_*)."""

    sync_timeout_s: float = 60.0
    async_timeout_s: int = 3600
    default_maxrec: int = 100_000
    hard_maxrec: int = 2_000_000
    retention_s: int = 7 * 24 * 3600
    async_workers: int = 2
    batch_rows: int = 5000
    pool_size: int = 8
    upload: upload.UploadLimits = upload.UploadLimits()

    @classmethod
    def from_env(cls) -> TapConfig:
        """Defaults overridden by CATALOGDB_TAP_SYNC_TIMEOUT, _ASYNC_TIMEOUT, _MAXREC, _HARD_MAXREC, ..."""
        env = os.environ.get
        d = cls()
        return cls(sync_timeout_s=float(env("CATALOGDB_TAP_SYNC_TIMEOUT", d.sync_timeout_s)),
                   async_timeout_s=int(env("CATALOGDB_TAP_ASYNC_TIMEOUT", d.async_timeout_s)),
                   default_maxrec=int(env("CATALOGDB_TAP_MAXREC", d.default_maxrec)),
                   hard_maxrec=int(env("CATALOGDB_TAP_HARD_MAXREC", d.hard_maxrec)),
                   retention_s=int(env("CATALOGDB_TAP_RETENTION", d.retention_s)),
                   async_workers=int(env("CATALOGDB_TAP_WORKERS", d.async_workers)),
                   pool_size=int(env("CATALOGDB_TAP_POOL", d.pool_size)),
                   upload=upload.UploadLimits.from_env())


class QueryError(Exception):
    """A query that failed in the database; the message is safe to show."""


def public_message(exc: psycopg.Error, timeout_s: float) -> str:
    """One line for the user: the primary message for query mistakes, a generic line otherwise."""
    state = exc.sqlstate or ""
    if state == "57014":
        return f"query cancelled: it ran longer than the {timeout_s:g} s time limit"
    if state == "25006":
        return "the service is read-only"
    if state.startswith("42501"):
        return "permission denied"
    if state[:2] in ("22", "42", "21", "2F", "39", "0A", "54"):
        primary = (exc.diag.message_primary or "query failed").splitlines()[0]
        return primary
    if state[:2] in ("08", "57", "53"):
        return "the database is not available right now; try again later"
    return f"query failed (SQLSTATE {state or 'unknown'})"


def _reader_engine(url: str, pool_size: int) -> Engine:
    """An engine that logs in as the reader role, or (where it cannot) switches to it on every connection."""
    # No pre-ping (a round trip per query): a connection that broke is invalidated when it fails.
    kw = dict(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, pool_recycle=3600)
    as_reader = make_url(url).set(username=READER_ROLE, password=os.environ.get("CATALOGDB_READER_PASSWORD"))
    engine = sa.create_engine(as_reader, **kw)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        set_role = False
    except sa.exc.OperationalError:
        engine.dispose()
        engine = sa.create_engine(url, **kw)
        set_role = True
        log.info("cannot log in as %s; the service switches to it with SET ROLE", READER_ROLE)

    @sa.event.listens_for(engine, "connect")
    def _readonly(dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cur:
            if set_role:
                cur.execute(f"SET ROLE {READER_ROLE}")
            cur.execute("SET default_transaction_read_only = on")
            cur.execute("SET application_name = 'catalogdb tap'")
            # Prepared cone searches keep their parse and view rewrite, never a generic plan (whose q3c
            # ranges cannot use the index well).
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    return engine


class Runner:
    """Runs ADQL against one database with the service's limits."""

    def __init__(self, url: str, config: TapConfig):
        self.config = config
        self.reader = _reader_engine(url, config.pool_size)

    def maxrec(self, requested: int | None) -> int:
        """The row cap for a request: MAXREC when given, the default otherwise, never above the hard limit."""
        return min(self.config.default_maxrec if requested is None else requested, self.config.hard_maxrec)

    def open(self, query: str, maxrec: int, timeout_s: float, uploads: Sequence[upload.Upload] = ()) -> Result:
        """Translate and start the query (with its TAP_UPLOAD tables); QueryError/AdqlError before any row is sent."""
        translation = adql.translate(query, limit=maxrec + 1, uploads=tuple(u.table for u in uploads))
        raw = self.reader.raw_connection()
        try:
            conn: psycopg.Connection = raw.driver_connection
            if uploads:
                upload.create(conn, uploads)
            # The SET rides in the same round trip as the query for cone searches (pipeline below).
            timeout_sql = f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"
            if translation.params is not None and maxrec <= self.config.default_maxrec and not uploads:
                # Cone searches: one prepared statement per connection; rows held by libpq (capped by
                # MAXREC) and turned into Python batch by batch.
                cursor = conn.cursor()
                with conn.pipeline():
                    cursor.execute(timeout_sql)
                    cursor.execute(translation.sql, translation.params, prepare=True)
            else:
                conn.execute(timeout_sql)
                cursor = conn.cursor(name="tap_result")
                cursor.execute(translation.sql, translation.params)
            first = cursor.fetchmany(self.config.batch_rows)
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                raw.invalidate()
                if isinstance(exc, psycopg.OperationalError):
                    raise  # the database went away: 503, and the pool reconnects next time
            raw.close()
            raise QueryError(public_message(exc, timeout_s)) from None
        except BaseException:
            raw.close()
            raise
        fields = fields_for(cursor.description, translation.columns)
        return Result(fields, raw, cursor, first, maxrec, timeout_s, self.config.batch_rows)

    def close(self) -> None:
        """Close the pooled connections."""
        self.reader.dispose()


class Result:
    """An open result: its fields, and its rows in batches (at most maxrec; `status` says if more existed)."""

    def __init__(self, fields: list[Field], raw, cursor, first: list[tuple], maxrec: int, timeout_s: float,
                 batch_rows: int):
        self.fields = fields
        self.status = ResultStatus()
        self._raw, self._cursor, self._first = raw, cursor, first
        self._maxrec, self._timeout, self._batch = maxrec, timeout_s, batch_rows

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
                batch = self._cursor.fetchmany(self._batch)
        except psycopg.Error as exc:
            self.status.error = public_message(exc, self._timeout)
        finally:
            self.close()

    def close(self) -> None:
        """Give the connection back (the read-only transaction is rolled back)."""
        if self._raw is not None:
            raw, self._raw = self._raw, None
            try:
                self._cursor.close()
                raw.close()
            except psycopg.Error:
                raw.invalidate()
