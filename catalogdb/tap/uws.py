"""UWS 1.1 asynchronous jobs kept in the database (tables tap_job and tap_job_result, migration 0006).

Jobs survive a server restart: their parameters, phase, times, error and result chunks are rows. A job
left QUEUED or EXECUTING by a stopped server is queued again at start-up. Jobs past their destruction
time are deleted with their results by a periodic clean-up.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb.tap import adql
from catalogdb.tap.query import QueryError, Runner
from catalogdb.tap.request import TapParams, TapRequestError
from catalogdb.tap.votable import xml_attr, xml_text

log = logging.getLogger("catalogdb.tap")

PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "HELD", "SUSPENDED",
          "ARCHIVED")
ACTIVE = ("QUEUED", "EXECUTING")
FINAL = ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")
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
        self._pids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopped = False

    # --- rows ----------------------------------------------------------------------------------------

    def create(self, params: dict[str, str]) -> str:
        """A new PENDING job with these request parameters; returns its id."""
        job_id = secrets.token_hex(8)
        maxrec = None
        try:
            maxrec = TapParams.from_dict(params).maxrec
        except TapRequestError:
            pass  # reported when the job runs
        duration = self.config.async_timeout_s
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "insert into tap_job (job_id, run_id, query, parameters, maxrec, response_format, "
                "execution_duration, destruction) values (:id, :run, :q, cast(:p as jsonb), :m, :f, :d, :x)"),
                {"id": job_id, "run": params.get("runid"), "q": params.get("query", ""), "p": json.dumps(params),
                 "m": maxrec, "f": params.get("responseformat") or params.get("format") or "votable",
                 "d": duration, "x": _now() + timedelta(seconds=self.config.retention_s)})
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
        maxrec = job.maxrec
        try:
            maxrec = TapParams.from_dict(merged).maxrec
        except TapRequestError:
            pass
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

    # --- execution ------------------------------------------------------------------------------------

    def run(self, job_id: str) -> None:
        """PENDING (or finished: run again) -> QUEUED, and hand the job to a worker."""
        with self.engine.begin() as conn:
            moved = conn.execute(sa.text(
                "update tap_job set phase = 'QUEUED', error_message = null, start_time = null, end_time = null "
                "where job_id = :id and phase in ('PENDING', 'HELD', 'SUSPENDED')"), {"id": job_id}).rowcount
        if moved:
            self.pool.submit(self._execute, job_id)

    def abort(self, job_id: str) -> None:
        """Stop the job if it is queued or executing."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("update tap_job set phase = 'ABORTED', end_time = now() "
                                 "where job_id = :id and phase in ('PENDING', 'QUEUED', 'EXECUTING')"),
                         {"id": job_id})
        with self._lock:
            pid = self._pids.get(job_id)
        if pid is not None:
            try:
                with self.engine.connect() as conn:
                    conn.execute(sa.text("select pg_cancel_backend(:pid)"), {"pid": pid})
            except sa.exc.DBAPIError:
                log.warning("could not cancel the query of job %s", job_id)

    def resume(self) -> int:
        """Queue again the jobs a stopped server left QUEUED or EXECUTING; returns how many."""
        with self.engine.begin() as conn:
            ids = conn.execute(sa.text(
                "update tap_job set phase = 'QUEUED', start_time = null where phase in ('QUEUED', 'EXECUTING') "
                "returning job_id")).scalars().all()
        for job_id in ids:
            self.pool.submit(self._execute, job_id)
        return len(ids)

    def shutdown(self) -> None:
        """Stop taking jobs; running ones are resumed by the next start."""
        self._stopped = True
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _claim(self, job_id: str) -> Job | None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.text(
                "update tap_job set phase = 'EXECUTING', start_time = now() where job_id = :id and phase = 'QUEUED' "
                "returning *"), {"id": job_id}).mappings().first()
        return Job(**row) if row else None

    def _execute(self, job_id: str) -> None:
        if self._stopped:
            return
        job = self._claim(job_id)
        if job is None:
            return  # aborted or deleted meanwhile
        try:
            self._produce(job)
        except (TapRequestError, adql.AdqlError, QueryError) as exc:
            self._finish(job_id, "ERROR", error_message=str(exc))
        except Exception:  # noqa: BLE001 - a job must end in ERROR, whatever failed
            log.exception("job %s failed", job_id)
            self._finish(job_id, "ERROR", error_message="internal error while running the query")
        finally:
            with self._lock:
                self._pids.pop(job_id, None)

    def _produce(self, job: Job) -> None:
        from catalogdb.tap.app import render  # the one place that turns results into bytes

        params = TapParams.from_dict(job.parameters)
        params.check()
        maxrec = self.runner.maxrec(params.maxrec)
        result = self.runner.open(params.query, maxrec, float(job.execution_duration))
        with self._lock:
            self._pids[job.job_id] = result._raw.driver_connection.info.backend_pid
        content_type, chunks = render(result, params)
        with self.engine.begin() as conn:
            conn.execute(sa.text("delete from tap_job_result where job_id = :id"), {"id": job.job_id})
        seq, buf = 0, bytearray()
        for chunk in chunks:
            buf += chunk
            if len(buf) >= CHUNK_BYTES:
                self._store(job.job_id, seq, bytes(buf))
                seq, buf = seq + 1, bytearray()
        self._store(job.job_id, seq, bytes(buf))
        status = result.status
        if status.error:
            self._finish(job.job_id, "ERROR", error_message=status.error)
        else:
            self._finish(job.job_id, "COMPLETED", row_count=status.rows, overflow=status.overflow,
                         content_type=content_type)

    def _store(self, job_id: str, seq: int, data: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("insert into tap_job_result values (:id, :s, :d)"),
                         {"id": job_id, "s": seq, "d": data})

    def _finish(self, job_id: str, phase: str, **values) -> None:
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
