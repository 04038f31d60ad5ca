"""`catalogdb ingest spectra`: preprocess LAMOST spectrum files in parallel and COPY them into `spectrum`.

Worker processes preprocess the files (spectra.process_files) in a thread of a catalogdb.pipeline while
this thread stores each finished batch. Two files with one OBSID are never dropped silently: one is
stored and the other goes to spectrum_reject with a reason naming both paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs
from catalogdb.errors import BadInput
from catalogdb.pipeline import pipeline
from catalogdb.spectra import FLUX_DTYPE, GRID, ProcessedSpectrum, process_files

SUFFIXES = (".fits", ".fits.gz", ".fit", ".fit.gz")
BATCH = 500


@dataclass
class SpectraSummary:
    """What an ingest of spectra did."""

    run_id: int
    found: int = 0
    unchanged: int = 0
    stored: int = 0
    flagged: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for the CLI."""
        out = [("files found", f"{self.found:,}"), ("already stored (same checksum)", f"{self.unchanged:,}"),
               ("stored", f"{self.stored:,}"), ("  of which flag = 1", f"{self.flagged:,}"),
               ("rejected", f"{self.rejected:,}"), ("run", str(self.run_id))]
        out += [(f"  {reason}", f"{n:,}") for reason, n in sorted(self.reasons.items())]
        return out


def spectrum_files(paths: Iterable[Path]) -> list[Path]:
    """The spectrum files named, and those found (recursively) in the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.lower().endswith(SUFFIXES))
        elif path.exists():
            found.append(path)
        else:
            raise BadInput(f"{path}: no such file or folder")
    return [p.resolve() for p in found]


def _stored_checksums(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select path, checksum from spectrum union all "
                                    "select path, checksum from spectrum_reject")).all()
    return dict(rows)


def _batches(results: Iterable[ProcessedSpectrum], size: int,
             progress: Callable[[int], None]) -> Iterator[list[ProcessedSpectrum]]:
    batch: list[ProcessedSpectrum] = []
    for done, result in enumerate(results, start=1):
        batch.append(result)
        progress(done)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _duplicate_reason(obsid: int, other: str, stored: bool) -> str:
    return f"duplicate OBSID {obsid}: {'already stored from' if stored else 'also in'} {other}"


def _duplicates(cur, good: list[ProcessedSpectrum], run_id: int) -> tuple[list[ProcessedSpectrum], list[tuple]]:
    """Split a batch's spectra into those to store and the duplicate OBSIDs to reject (with both paths named).

    Within a run the smallest path of an OBSID is kept, whatever order the workers finish in; a spectrum
    stored by an earlier run keeps its place while its file exists (when it is gone, the file was moved).
    Rejections are (path, checksum, obsid, reason, flag) tuples.
    """
    keep: dict[int, ProcessedSpectrum] = {}
    rejects = []
    for s in sorted(good, key=lambda s: s.path):
        if s.obsid in keep:
            rejects.append((s.path, s.checksum, s.obsid, _duplicate_reason(s.obsid, keep[s.obsid].path, False), s.flag))
        else:
            keep[s.obsid] = s
    cur.execute("select obsid, path, checksum, run_id, flag from spectrum where obsid = any(%s::int8[])",
                (list(keep),))
    for obsid, path, checksum, stored_run, flag in cur.fetchall():
        new = keep[obsid]
        if path == new.path or not os.path.exists(path):
            continue  # the same file re-processed, or the stored one moved or replaced
        if stored_run == run_id and new.path < path:  # this run stored the larger path earlier: swap them
            rejects.append((path, checksum, obsid, _duplicate_reason(obsid, new.path, False), flag))
        else:
            rejects.append((new.path, new.checksum, obsid, _duplicate_reason(obsid, path, True), new.flag))
            del keep[obsid]
    return list(keep.values()), rejects


def _write_batch(engine: Engine, batch: list[ProcessedSpectrum], run_id: int) -> list[tuple]:
    """COPY one batch into staging and merge it (an interrupted run keeps what it finished); returns duplicates."""
    good = [s for s in batch if s.flux is not None]
    bad = [(s.path, s.checksum, s.obsid, s.reason) for s in batch if s.flux is None]
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        # one ingest at a time decides which of two files with the same OBSID is stored
        cur.execute("select pg_advisory_xact_lock(hashtext('catalogdb.ingest.spectrum'))")
        good, duplicates = _duplicates(cur, good, run_id)
        bad += [d[:4] for d in duplicates]
        cur.execute("create temp table if not exists spectrum_stage (like spectrum) on commit delete rows")
        with cur.copy("copy spectrum_stage (obsid, flux, flag, snrg, path, checksum, run_id) "
                      "from stdin (format binary)") as copy:
            copy.set_types(["int8", "bytea", "int2", "float4", "text", "text", "int8"])
            for s in good:
                copy.write_row((s.obsid, np.asarray(s.flux, dtype=FLUX_DTYPE).tobytes(), s.flag, s.snrg,
                                s.path, s.checksum, run_id))
        cur.execute(
            "insert into spectrum select * from spectrum_stage "
            "on conflict (obsid) do update set flux = excluded.flux, flag = excluded.flag, snrg = excluded.snrg,"
            " path = excluded.path, checksum = excluded.checksum, run_id = excluded.run_id")
        if bad:
            cur.executemany(
                "insert into spectrum_reject (path, checksum, obsid, reason, run_id) values (%s, %s, %s, %s, %s) "
                "on conflict (path) do update set checksum = excluded.checksum, obsid = excluded.obsid, "
                "reason = excluded.reason, run_id = excluded.run_id",
                [(*b, run_id) for b in bad])
        # A file that now preprocesses (and is not a duplicate) is no longer a rejection.
        if good:
            cur.execute("delete from spectrum_reject where path = any(%s)", ([s.path for s in good],))
    return duplicates


def ingest_spectra(engine: Engine, paths: list[Path], workers: int = 2,
                   progress: Callable[[str, int, int | None], None] | None = None,
                   dask: str | None = None) -> SpectraSummary:
    """Preprocess and store every spectrum file not already stored with the same checksum.

    With `dask` (a scheduler address, or local[:N]) the files are preprocessed on Dask workers instead.
    """
    files = spectrum_files(paths)
    known = _stored_checksums(engine)
    todo = [p for p in files if str(p) not in known or known[str(p)] != runs.sha256(p)]
    parameters = {"paths": [str(p) for p in paths], "workers": workers,
                  "grid": [float(GRID[0]), float(GRID[-1]), len(GRID)], "dask": dask}

    def preprocessed(done: int) -> None:
        if progress:
            progress("preprocessing spectra", done, len(todo))

    with runs.recorded(engine, "ingest spectra", parameters) as run:
        summary = SpectraSummary(run_id=run.run_id, found=len(files), unchanged=len(files) - len(todo))
        if dask:
            from catalogdb import dask_workers

            results = dask_workers.process_files(todo, dask)
        else:
            results = process_files(todo, workers=workers)
        source = _batches(results, BATCH, preprocessed)
        with pipeline(source, maxsize=2, name="spectra") as batches:
            for batch in batches:
                duplicates = _write_batch(engine, batch, run.run_id)
                for result in batch:
                    if result.flux is None:
                        summary.rejected += 1
                        key = result.reason.split(":")[0] if result.reason else "unknown"
                        summary.reasons[key] = summary.reasons.get(key, 0) + 1
                    else:
                        summary.stored += 1
                        summary.flagged += int(result.flag)
                for *_, flag in duplicates:  # each was counted as stored, now or in an earlier batch
                    summary.stored -= 1
                    summary.flagged -= int(flag)
                    summary.rejected += 1
                    summary.reasons["duplicate OBSID"] = summary.reasons.get("duplicate OBSID", 0) + 1
                run.row_counts = {"found": summary.found, "unchanged": summary.unchanged, "stored": summary.stored,
                                  "flagged": summary.flagged, "rejected": summary.rejected}
    return summary
