"""UWS 1.1 asynchronous jobs kept in the database (tables tap_job and tap_job_result, migration 0006).

Jobs survive a server restart: their parameters, phase, times, error and result chunks are rows. A job
left QUEUED or EXECUTING by a stopped server is queued again at start-up. Jobs past their destruction
time are deleted with their results by a periodic clean-up.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.tap import adql, upload
from catalogdb.tap.output import render
from catalogdb.tap.query import QueryError, Runner, cancel
from catalogdb.tap.request import TapParams, TapRequestError
from catalogdb.writers.votable import xml_attr, xml_text

log = logging.getLogger("catalogdb.tap")

PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "HELD", "SUSPENDED",
          "ARCHIVED")
CHUNK_BYTES = 4 * 1024 * 1024
UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass
class Job:
    """One row of tap_job."""

    job_id: str
    run_id: str | None
    owner: str | None
    phase: str
    query: str
    parameters: dict
    maxrec: int | None
    response_format: str
    creation_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    execution_duration: int
    destruction: datetime
    error_message: str | None
    row_count: int | None
    overflow: bool | None
    content_type: str | None
    service_url: str | None = None
    attempts: int = 0


class QuotaError(Exception):
    """The job store is full; the message says which quota."""


class JobAborted(Exception):
    """The job was aborted or deleted before its query was sent."""


JOB_ID = re.compile(r"[0-9a-f]{16}")  # what JobStore.create makes (8 random bytes in hex)
MAX_ATTEMPTS = 2  # a job that server stops interrupted this often ends in ERROR instead of running again


def _now() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime | None) -> str | None:
    """UWS timestamps: ISO 8601 in UTC with a Z."""
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as a UWS client sends it (Z or offset; naive means UTC)."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class JobStore:
    """Create, run, change and delete jobs; rows in the owner's database, queries through the Runner."""

    def __init__(self, engine: Engine, runner: Runner):
        self.engine = engine
        self.runner = runner
        self.config = runner.config
        self.pool = ThreadPoolExecutor(max_workers=self.config.async_workers, thread_name_prefix="tap-job")
        self._running: dict[str, psycopg.Connection] = {}  # job -> the connection its query runs on
        self._done: dict[str, threading.Event] = {}  # job handed to a worker -> set when the worker is done
        self._aborted: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = False

    # --- rows ----------------------------------------------------------------------------------------

    def _check_size(self, params: dict[str, str]) -> None:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in params.items())
        if size > self.config.parameter_bytes:
            raise TapRequestError(f"the job's parameters have {size} bytes, more than the limit of "
                                  f"{self.config.parameter_bytes} bytes")

    def _maxrec(self, params: dict[str, str]) -> int | None:
        try:
            maxrec = TapParams.from_dict(params).maxrec
        except TapRequestError:
            return None  # reported when the job runs
        return None if maxrec is None else min(maxrec, self.config.hard_maxrec)

    def create(self, params: dict[str, str], uploads: dict[str, bytes] | None = None,
               service_url: str | None = None) -> str:
        """A new PENDING job with these request parameters and uploaded VOTables; returns its id (QuotaError when
        the store is full)."""
        self._check_size(params)
        job_id = secrets.token_hex(8)  # JOB_ID
        maxrec = self._maxrec(params)
        duration = self.config.async_timeout_s
        with self.engine.connect() as conn:
            count = conn.execute(sa.text("select count(*) from tap_job")).scalar()
        if count >= self.config.max_jobs:
            count -= self.cleanup()  # jobs past their destruction time make room first
        if count >= self.config.max_jobs:
            raise QuotaError(f"the service holds {self.config.max_jobs} jobs, its limit: delete finished jobs "
                             "or try again later")
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "insert into tap_job (job_id, run_id, query, parameters, maxrec, response_format, "
                "execution_duration, destruction, service_url) "
                "values (:id, :run, :q, cast(:p as jsonb), :m, :f, :d, :x, :url)"),
                {"id": job_id, "run": params.get("runid"), "q": params.get("query", ""), "p": json.dumps(params),
                 "m": maxrec, "f": params.get("responseformat") or params.get("format") or "votable",
                 "d": duration, "x": _now() + timedelta(seconds=self.config.retention_s), "url": service_url})
            if uploads:
                conn.execute(sa.text("insert into tap_job_upload values (:id, :name, :data)"),
                             [{"id": job_id, "name": k, "data": v} for k, v in uploads.items()])
        return job_id

    def get(self, job_id: str) -> Job | None:
        """The job, or None when there is no such job."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("select * from tap_job where job_id = :id"), {"id": job_id}).mappings().first()
        return Job(**row) if row else None

    def find(self, phases: list[str] | None = None, after: datetime | None = None,
             last: int | None = None) -> list[Job]:
        """Jobs, newest first (UWS 1.1 filters PHASE, AFTER, LAST); ARCHIVED only when asked for."""
        where, args = ["true"], {}
        if phases:
            where.append("phase = any(:phases)")
            args["phases"] = phases
        else:
            where.append("phase <> 'ARCHIVED'")
        if after is not None:
            where.append("creation_time > :after")
            args["after"] = after
        sql = f"select * from tap_job where {' and '.join(where)} order by creation_time desc"
        if last is not None:
            sql += " limit :last"
            args["last"] = last
        with self.engine.connect() as conn:
            return [Job(**r) for r in conn.execute(sa.text(sql), args).mappings()]

    def update(self, job_id: str, **values) -> bool:
        """Set columns of a job; False when it does not exist."""
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self.engine.begin() as conn:
            n = conn.execute(sa.text(f"update tap_job set {sets} where job_id = :job_id"),
                             {**values, "job_id": job_id}).rowcount
        return n > 0

    def set_parameters(self, job: Job, params: dict[str, str]) -> None:
        """Change query parameters of a PENDING job (UWS: POST to the job or its parameters)."""
        merged = {**job.parameters, **params}
        self._check_size(merged)
        maxrec = self._maxrec(merged) if "maxrec" in params else job.maxrec
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "update tap_job set parameters = cast(:p as jsonb), query = :q, maxrec = :m, response_format = :f, "
                "run_id = :run where job_id = :id"),
                {"p": json.dumps(merged), "q": merged.get("query", ""), "m": maxrec, "id": job.job_id,
                 "f": merged.get("responseformat") or merged.get("format") or "votable", "run": merged.get("runid")})

    def delete(self, job_id: str) -> bool:
        """Abort if running and remove the job and its results."""
        self.abort(job_id)
        with self.engine.begin() as conn:
            return conn.execute(sa.text("delete from tap_job where job_id = :id"), {"id": job_id}).rowcount > 0

    def results(self, job_id: str) -> Iterator[bytes]:
        """The stored result, chunk by chunk."""
        seq = 0
        while True:
            with self.engine.connect() as conn:
                data = conn.execute(sa.text("select data from tap_job_result where job_id = :id and seq = :s"),
                                    {"id": job_id, "s": seq}).scalar()
            if data is None:
                return
            yield bytes(data)
            seq += 1

    def cleanup(self) -> int:
        """Delete jobs past their destruction time; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(sa.text("delete from tap_job where destruction < now()")).rowcount

    def make_room(self, keep: str) -> list[str]:
        """Destroy the jobs with the oldest results until the stored results fit their quota; returns their ids."""
        with self.engine.connect() as conn:
            stored = conn.execute(sa.text(
                "select r.job_id, sum(octet_length(r.data)) from tap_job_result r join tap_job j using (job_id) "
                "group by r.job_id, j.end_time order by r.job_id = :keep desc, j.end_time desc nulls first"),
                {"keep": keep}).all()
        total, doomed = 0, []
        for job_id, nbytes in stored:  # newest first: what passes the quota is the oldest
            total += nbytes
            if total > self.config.result_storage_bytes and job_id != keep:
                doomed.append(job_id)
        if doomed:
            with self.engine.begin() as conn:
                conn.execute(sa.text("delete from tap_job where job_id = any(:ids)"), {"ids": doomed})
            log.info("destroyed %d job(s) with the oldest results: stored results passed %d bytes", len(doomed),
                     self.config.result_storage_bytes)
        return doomed

    # --- execution ------------------------------------------------------------------------------------

    def run(self, job_id: str) -> None:
        """PENDING (or finished: run again) -> QUEUED, and hand the job to a worker."""
        with self.engine.begin() as conn:
            moved = conn.execute(sa.text(
                "update tap_job set phase = 'QUEUED', error_message = null, start_time = null, end_time = null "
                "where job_id = :id and phase in ('PENDING', 'HELD', 'SUSPENDED')"), {"id": job_id}).rowcount
        if moved:
            self._submit(job_id)

    def _submit(self, job_id: str) -> None:
        with self._lock:
            self._done.setdefault(job_id, threading.Event())
        self.pool.submit(self._execute, job_id)

    def abort(self, job_id: str, wait_s: float = 10.0) -> None:
        """Stop the job if it is queued or executing: its query is cancelled, and waited for up to wait_s."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("update tap_job set phase = 'ABORTED', end_time = now() "
                                 "where job_id = :id and phase in ('PENDING', 'QUEUED', 'EXECUTING')"),
                         {"id": job_id})
        with self._lock:
            done = self._done.get(job_id)
            if done is not None:
                self._aborted.add(job_id)
            conn = self._running.get(job_id)
        if conn is not None:
            cancel(conn)
        if done is not None and not done.wait(wait_s):
            log.warning("the query of job %s was cancelled but has not stopped yet", job_id)

    def resume(self) -> int:
        """Queue again the jobs a stopped server left QUEUED or EXECUTING; returns how many.

        A job that was EXECUTING for the MAX_ATTEMPTS-th time ends in ERROR instead: it may be what stopped
        the server.
        """
        with self.engine.begin() as conn:
            failed = conn.execute(sa.text(
                "update tap_job set phase = 'ERROR', end_time = now(), error_message = :msg "
                "where phase = 'EXECUTING' and attempts >= :n returning job_id"),
                {"n": MAX_ATTEMPTS, "msg": f"the server stopped {MAX_ATTEMPTS} times while the job ran: it is "
                                           "not run again"}).scalars().all()
            ids = conn.execute(sa.text(
                "update tap_job set phase = 'QUEUED', start_time = null where phase in ('QUEUED', 'EXECUTING') "
                "returning job_id")).scalars().all()
        if failed:
            log.warning("job(s) %s interrupted %d times: ERROR", ", ".join(failed), MAX_ATTEMPTS)
        for job_id in ids:
            self._submit(job_id)
        return len(ids)

    def shutdown(self) -> None:
        """Stop taking jobs and cancel the running queries; their jobs are resumed by the next start."""
        self._stopped = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = list(self._running.values())
        for conn in running:
            cancel(conn)
        self.pool.shutdown(wait=True)

    def _claim(self, job_id: str) -> Job | None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.text(
                "update tap_job set phase = 'EXECUTING', start_time = now(), attempts = attempts + 1 "
                "where job_id = :id and phase = 'QUEUED' returning *"), {"id": job_id}).mappings().first()
        return Job(**row) if row else None

    def _execute(self, job_id: str) -> None:
        try:
            job = None if self._stopped else self._claim(job_id)
            if job is not None:  # None: aborted or deleted meanwhile
                self._produce(job)
        except JobAborted:
            pass
        except (TapRequestError, adql.AdqlError, QueryError) as exc:
            self._finish(job_id, "ERROR", error_message=str(exc))
        except Exception:  # noqa: BLE001 - a job must end in ERROR, whatever failed
            log.exception("job %s failed", job_id)
            self._finish(job_id, "ERROR", error_message="internal error while running the query")
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._aborted.discard(job_id)
                done = self._done.pop(job_id, None)
            if done is not None:
                done.set()

    def _started(self, job_id: str, conn: psycopg.Connection) -> None:
        """Record the job's connection before its query is sent, so that ABORT, DELETE and a stop cancel it."""
        with self._lock:
            if job_id in self._aborted or self._stopped:
                raise JobAborted(job_id)
            self._running[job_id] = conn

    def _produce(self, job: Job) -> None:
        params = TapParams.from_dict(job.parameters)
        params.check()
        maxrec = self.runner.maxrec(params.maxrec)
        result = self.runner.open(params.query, maxrec, float(job.execution_duration), self._uploads(job),
                                  started=lambda conn: self._started(job.job_id, conn))
        content_type, chunks = render(result, params, job.service_url)
        with self.engine.begin() as conn:
            conn.execute(sa.text("delete from tap_job_result where job_id = :id"), {"id": job.job_id})
        seq, buf, stored = 0, bytearray(), 0
        for chunk in chunks:
            buf += chunk
            if len(buf) >= CHUNK_BYTES:
                stored = self._store(job.job_id, seq, bytes(buf), stored)
                seq, buf = seq + 1, bytearray()
        self._store(job.job_id, seq, bytes(buf), stored)
        status = result.status
        if status.error:
            self._finish(job.job_id, "ERROR", error_message=status.error)
        else:
            self._finish(job.job_id, "COMPLETED", row_count=status.rows, overflow=status.overflow,
                         content_type=content_type)
            self.make_room(job.job_id)

    def _uploads(self, job: Job) -> list[upload.Upload]:
        """The job's TAP_UPLOAD tables, parsed again from the VOTables stored when it was created."""
        if "upload" not in job.parameters:
            return []
        with self.engine.connect() as conn:
            stored = dict(conn.execute(sa.text("select name, data from tap_job_upload where job_id = :id"),
                                       {"id": job.job_id}).all())
        tables = {}
        for name, _ in upload.sources(job.parameters["upload"]):
            if name not in stored:
                raise TapRequestError(f"UPLOAD {name}: the table was not sent when the job was created")
            tables[name] = bytes(stored[name])
        return upload.parse_all(tables, self.config.upload)

    def _store(self, job_id: str, seq: int, data: bytes, before: int) -> int:
        """Store a chunk of the result after `before` bytes; returns the bytes stored so far."""
        if before + len(data) > self.config.result_storage_bytes:
            with self.engine.begin() as conn:
                conn.execute(sa.text("delete from tap_job_result where job_id = :id"), {"id": job_id})
            raise QueryError(f"the result is larger than the {self.config.result_storage_bytes} bytes that "
                             "stored results may take: ask for fewer rows (MAXREC, TOP) or fewer columns")
        with self.engine.begin() as conn:
            conn.execute(sa.text("insert into tap_job_result values (:id, :s, :d)"),
                         {"id": job_id, "s": seq, "d": data})
        return before + len(data)

    def _finish(self, job_id: str, phase: str, **values) -> None:
        if self._stopped and phase == "ERROR":
            return  # cancelled by the stop: left EXECUTING, for the next start to resume (or end in ERROR)
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"update tap_job set phase = :phase, end_time = now(){', ' if sets else ''}{sets} "
                                 "where job_id = :job_id and phase = 'EXECUTING'"),
                         {**values, "phase": phase, "job_id": job_id})


# --- documents ------------------------------------------------------------------------------------------


def _el(name: str, value) -> str:
    if value is None:
        return f'<uws:{name} xsi:nil="true"/>'
    return f"<uws:{name}>{xml_text(str(value))}</uws:{name}>"


def job_xml(job: Job, job_url: str) -> str:
    """The UWS 1.1 job document."""
    params = "".join(f"<uws:parameter id={xml_attr(k)}>{xml_text(str(v))}</uws:parameter>"
                     for k, v in job.parameters.items())
    results = ""
    if job.phase == "COMPLETED":
        results = (f'<uws:result id="result" xlink:type="simple" xlink:href={xml_attr(job_url + "/results/result")}'
                   f"{' mime-type=' + xml_attr(job.content_type) if job.content_type else ''}/>")
    error = ""
    if job.phase == "ERROR":
        error = (f'<uws:errorSummary type="fatal" hasDetail="true">'
                 f"<uws:message>{xml_text(job.error_message or 'error')}</uws:message></uws:errorSummary>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<uws:job xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}" version="1.1">'
            + _el("jobId", job.job_id) + (_el("runId", job.run_id) if job.run_id else "") + _el("ownerId", job.owner)
            + _el("phase", job.phase) + _el("quote", None) + _el("creationTime", iso(job.creation_time))
            + _el("startTime", iso(job.start_time)) + _el("endTime", iso(job.end_time))
            + _el("executionDuration", job.execution_duration) + _el("destruction", iso(job.destruction))
            + f"<uws:parameters>{params}</uws:parameters><uws:results>{results}</uws:results>{error}"
            + "</uws:job>\n")


def jobs_xml(jobs: list[Job], base_url: str) -> str:
    """The UWS 1.1 job list."""
    refs = "".join(f"<uws:jobref id={xml_attr(j.job_id)} xlink:href={xml_attr(base_url + '/' + j.job_id)}>"
                   + (_el("runId", j.run_id) if j.run_id else "")
                   + _el("phase", j.phase) + _el("creationTime", iso(j.creation_time)) + "</uws:jobref>"
                   for j in jobs)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<uws:jobs xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}" version="1.1">'
            f"{refs}</uws:jobs>\n")
