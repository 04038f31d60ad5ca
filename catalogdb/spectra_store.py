"""`catalogdb ingest spectra`: preprocess LAMOST spectrum files in parallel and COPY them into `spectrum`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs
from catalogdb.errors import BadInput
from catalogdb.spectra import GRID, ProcessedSpectrum, process_files

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


def _write_batch(engine: Engine, batch: list[ProcessedSpectrum], run_id: int) -> None:
    """COPY one batch into staging and merge it, so an interrupted run keeps what it finished."""
    good = [s for s in batch if s.flux is not None]
    bad = [s for s in batch if s.flux is None]
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute("create temp table if not exists spectrum_stage (like spectrum) on commit delete rows")
        with cur.copy("copy spectrum_stage (obsid, flux, flag, snrg, path, checksum, run_id) "
                      "from stdin (format binary)") as copy:
            copy.set_types(["int8", "bytea", "int2", "float4", "text", "text", "int8"])
            for s in good:
                copy.write_row((s.obsid, np.asarray(s.flux, dtype="<f4").tobytes(), s.flag, s.snrg,
                                s.path, s.checksum, run_id))
        cur.execute(
            "insert into spectrum select distinct on (obsid) * from spectrum_stage order by obsid, path "
            "on conflict (obsid) do update set flux = excluded.flux, flag = excluded.flag, snrg = excluded.snrg,"
            " path = excluded.path, checksum = excluded.checksum, run_id = excluded.run_id")
        if bad:
            cur.executemany(
                "insert into spectrum_reject (path, checksum, obsid, reason, run_id) values (%s, %s, %s, %s, %s) "
                "on conflict (path) do update set checksum = excluded.checksum, obsid = excluded.obsid, "
                "reason = excluded.reason, run_id = excluded.run_id",
                [(s.path, s.checksum, s.obsid, s.reason, run_id) for s in bad])
        # A file that now preprocesses is no longer a rejection.
        if good:
            cur.execute("delete from spectrum_reject where path = any(%s)", ([s.path for s in good],))


def ingest_spectra(engine: Engine, paths: list[Path], workers: int = 2,
                   progress: Callable[[str, int, int | None], None] | None = None,
                   dask: str | None = None) -> SpectraSummary:
    """Preprocess and store every spectrum file not already stored with the same checksum.

    With `dask` (a scheduler address, or local[:N]) the files are preprocessed on Dask workers instead.
    """
    files = spectrum_files(paths)
    known = _stored_checksums(engine)
    todo = [p for p in files if str(p) not in known or known[str(p)] != runs.sha256(p)]
    with engine.begin() as conn:
        run_id = runs.start(conn, "ingest spectra", {"paths": [str(p) for p in paths], "workers": workers,
                                                     "grid": [float(GRID[0]), float(GRID[-1]), len(GRID)],
                                                     "dask": dask})
    summary = SpectraSummary(run_id=run_id, found=len(files), unchanged=len(files) - len(todo))
    batch: list[ProcessedSpectrum] = []
    if dask:
        from catalogdb import dask_workers

        results = dask_workers.process_files(todo, dask)
    else:
        results = process_files(todo, workers=workers)
    status = "failed"
    try:
        for done, result in enumerate(results, start=1):
            batch.append(result)
            if result.flux is None:
                summary.rejected += 1
                key = result.reason.split(":")[0] if result.reason else "unknown"
                summary.reasons[key] = summary.reasons.get(key, 0) + 1
            else:
                summary.stored += 1
                summary.flagged += int(result.flag)
            if len(batch) >= BATCH:
                _write_batch(engine, batch, run_id)
                batch = []
            if progress:
                progress("preprocessing spectra", done, len(todo))
        if batch:
            _write_batch(engine, batch, run_id)
        status = "done"
    finally:
        with engine.begin() as conn:
            runs.finish(conn, run_id, {"found": summary.found, "unchanged": summary.unchanged,
                                       "stored": summary.stored, "flagged": summary.flagged,
                                       "rejected": summary.rejected}, status=status)
    return summary
