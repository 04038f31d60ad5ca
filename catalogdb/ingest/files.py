"""The ingest driver: survey files of one source, read, validated and COPYed into its table in one transaction.

One `ingest_files` call is one transaction: every file is read in chunks, validated, COPYed (binary,
encoded with numpy; see benchmarks/ingest.py) into a temporary staging table and merged into the target
with INSERT ... ON CONFLICT DO UPDATE ... WHERE (row differs), which separates inserted, updated and
unchanged rows. When none of the keys of the file's first chunk is in the target (an index probe; always so
for an empty target) the rows are COPYed straight in instead, in a savepoint, falling back to staging when a
later key is there already or the file repeats a key: a file of new rows goes in as fast as into an empty
table (benchmarks/ingest.py, gaia_second_file). The run row (inputs with SHA-256, counts) and an
ingested_file row per file loaded are written in the same transaction, so a failed or killed run leaves the
database as it was (a failure only adds a 'failed' run row, see runs.recorded). ingested_file decides which
files are already ingested.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs
from catalogdb.errors import BadInput, CatalogdbError
from catalogdb.ingest.copy import copy_batches, quote
from catalogdb.ingest.merge import create_staging, dedupe_staging, keys_present, merge
from catalogdb.ingest.rejects import Rejects
from catalogdb.ingest.spec import Spec, load_spec
from catalogdb.ingest.validate import resolve, validate
from catalogdb.readers import TableFile, detect_format, open_table

Progress = Callable[[str, int, "int | None"], None]


@dataclass
class IngestSummary:
    """What one ingest did, per file and in total."""

    source: str
    files: list[dict] = field(default_factory=list)
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    skipped_files: int = 0
    reject_file: Path | None = None
    run_id: int | None = None
    unit_conversions: list[dict] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for the CLI's summary table."""
        out = [("source", self.source), ("files", f"{len(self.files)}")]
        if self.skipped_files:
            out.append(("skipped (already ingested)", f"{self.skipped_files}"))
        out += [("rows read", f"{self.read:,}"), ("inserted", f"{self.inserted:,}"),
                ("updated", f"{self.updated:,}"), ("unchanged", f"{self.unchanged:,}"),
                ("rejected", f"{self.rejected:,}")]
        for f in self.files:
            if f.get("reject_file"):
                out.append(("reject file", str(f["reject_file"])))
        for c in self.unit_conversions:
            out.append(("unit conversion", f"{Path(c['file']).name}: {c['column']} {c['from']} -> {c['to']} "
                                           f"(x {c['factor']:g}) into {c['table_column']}"))
        out.append(("run", "none (nothing to do)" if self.run_id is None else f"{self.run_id}"))
        return out


def _already_ingested(conn: sa.Connection, source: str, sha: str, path: str) -> bool:
    """Same checksum ingested into this source, and no later ingest of this path with other content."""
    return conn.execute(sa.text(
        "select exists (select 1 from ingested_file where source = :source and sha256 = :sha) "
        "and coalesce((select sha256 from ingested_file where source = :source and path = :path "
        "order by run_id desc limit 1), :sha) = :sha"), {"source": source, "sha": sha, "path": path}).scalar_one()


def _record_file(conn: sa.Connection, run_id: int, source: str, table: str, info: dict, rows: int) -> None:
    """One ingested_file row: this file's content is now in `table`."""
    conn.execute(sa.text(
        "insert into ingested_file (run_id, path, sha256, size, source, table_name, rows) "
        "values (:run, :path, :sha, :size, :source, :table, :rows)"),
        {"run": run_id, "path": info["path"], "sha": info["sha256"], "size": info["size"], "source": source,
         "table": table, "rows": rows})


def _load_file(conn: sa.Connection, spec: Spec, tf: TableFile, mapped, on_error: str,
               progress: Progress | None, label: str) -> dict:
    """Read, validate and merge one file inside the caller's transaction; per-file counts."""
    cur = conn.connection.driver_connection.cursor()
    columns = [c.name for c, _ in mapped]
    file_of = {c.name: f for c, f in mapped}
    rejects = Rejects(tf.path, on_error, [f for _, f in mapped])
    target = quote(spec.table)

    def batches(with_row: bool):
        read = 0
        tf.invalid_rows.clear()
        reported = 0

        def malformed(upto: float) -> list[tuple[int, str, str, str]]:
            # lines the reader could not split, up to data row `upto`, in file order
            nonlocal reported
            due = [r for r in tf.invalid_rows[reported:] if r.row <= upto]
            reported += len(due)
            return [(r.row, "(line)", r.text, r.reason) for r in due]

        for chunk in tf.chunks([f for _, f in mapped]):
            read += chunk.table.num_rows
            due = malformed(int(chunk.rows[-1]) if len(chunk.rows) else 0)
            try:
                table, good = validate(chunk, spec, mapped, rejects)
            except BadInput as exc:
                if due and due[0][0] < getattr(exc, "row", math.inf):
                    rejects.bad(due)  # abort: the malformed line comes first in the file
                raise
            rejects.bad(due)
            if with_row:
                table = table.append_column("_row", pa.array(chunk.rows[good]))
            counts["read"] = read + reported
            if progress:
                progress(label, read, tf.total_rows)
            yield table
        rejects.bad(malformed(math.inf))
        counts["read"] = read + reported  # a malformed line is a row read (and rejected)

    counts = {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    cur.execute(f"lock table {target} in share row exclusive mode")
    direct = batches(False)
    first = next(direct, None)
    if not keys_present(cur, spec, first):
        # The first chunk's keys are new: COPY straight in (as fast as into an empty table); a key that is
        # there already or repeats in the file makes us start over through staging.
        cur.execute("savepoint ingest_direct")
        try:
            n = copy_batches(cur, target, columns, itertools.chain([first] if first is not None else [], direct))
            cur.execute("release savepoint ingest_direct")
            counts["inserted"] = n
            return {**counts, "rejected": rejects.count, "reject_file": rejects.close()}
        except psycopg.errors.UniqueViolation:
            cur.execute("rollback to savepoint ingest_direct")
    direct.close()
    rejects.reset()
    stg = create_staging(cur, target)
    staged = copy_batches(cur, stg, [*columns, "_row"], batches(True))
    staged -= dedupe_staging(cur, spec, stg, rejects, file_of)
    if progress:
        progress(f"{label}: merging", 0, None)
    inserted, updated = merge(cur, spec, stg, columns)
    cur.execute(f"drop table {stg}")
    counts.update(inserted=inserted, updated=updated, unchanged=staged - inserted - updated)
    return {**counts, "rejected": rejects.count, "reject_file": rejects.close()}


def ingest_files(engine: Engine, source: str, files: list[Path], on_error: str = "abort",
                 progress: Progress | None = None) -> IngestSummary:
    """Load survey files of one source into its table in one transaction; skip files already ingested."""
    if on_error not in ("abort", "skip"):
        raise CatalogdbError(f"on_error must be abort or skip, not {on_error!r}")
    spec = load_spec(source)
    summary = IngestSummary(source=source)
    prepared = []
    for given in files:
        path = Path(given)
        if not path.exists():
            raise BadInput(f"{path}: no such file; expected a {spec.description or source} file")
        if path.is_dir():
            raise BadInput(f"{path}: is a folder; expected a {spec.description or source} file")
        fmt = detect_format(path)
        if fmt not in spec.formats:
            raise BadInput(f"{path}: is a {fmt} file; {source} accepts {', '.join(spec.formats)}")
        # open every file and check its columns before loading any: a bad third file fails fast
        tf = open_table(path.resolve(), fmt, spec.fits_hdu)
        prepared.append((path.resolve(), fmt, tf, *resolve(spec, tf)))

    inputs: list[dict] = []  # per file, in the order given
    todo = []
    with engine.connect() as conn, conn.begin():
        conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:k))"), {"k": f"catalogdb.ingest.{spec.table}"})
        for path, fmt, tf, mapped, conversions in prepared:
            if progress:
                progress(f"{path.name}: checksum", 0, None)
            info = {"path": str(path), "format": fmt, "size": path.stat().st_size, "sha256": runs.sha256(path)}
            if _already_ingested(conn, source, info["sha256"], info["path"]):
                summary.skipped_files += 1
                summary.files.append({**info, "skipped": True, "read": 0, "inserted": 0, "updated": 0,
                                      "unchanged": 0, "rejected": 0, "reject_file": None})
                inputs.append({**info, "skipped": True})
                continue
            summary.unit_conversions += conversions
            todo.append((len(inputs), info, tf, mapped, conversions))
            inputs.append({**info, "skipped": False})
            summary.files.append(inputs[-1])  # replaced by its counts once loaded
        if not todo:
            conn.rollback()
            return summary  # nothing new: nothing written, not even a run row
        parameters = {"source": source, "on_error": on_error, "table": spec.table,
                      "unit_conversions": summary.unit_conversions}
        with runs.recorded(conn, "ingest", parameters, inputs) as run:
            for at, info, tf, mapped, conversions in todo:
                counts = _load_file(conn, spec, tf, mapped, on_error, progress, Path(info["path"]).name)
                entry = {**info, "skipped": False, **counts, "unit_conversions": conversions}
                summary.files[at] = entry
                inputs[at] = {k: (str(v) if isinstance(v, Path) else v) for k, v in entry.items()}
                for k in ("read", "inserted", "updated", "unchanged", "rejected"):
                    setattr(summary, k, getattr(summary, k) + counts[k])
                if counts["reject_file"] and summary.reject_file is None:
                    summary.reject_file = counts["reject_file"]
                _record_file(conn, run.run_id, source, spec.table, info, counts["read"])
            run.row_counts = {k: getattr(summary, k) for k in ("read", "inserted", "updated", "unchanged", "rejected")}
            run.row_counts["skipped_files"] = summary.skipped_files
            run.inputs = json.loads(json.dumps(inputs, default=str))
        summary.run_id = run.run_id
    if summary.inserted or summary.updated:
        with engine.connect() as conn:
            conn.execute(sa.text(f"analyze {quote(spec.table)}"))
            conn.commit()
    return summary
