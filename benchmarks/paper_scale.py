"""The paper's scale end to end: a mock at the paper's sizes times --scale, then every step with its baseline.

Sizes at --scale 1 (Shen & Luo 2024): 7,060,679 LAMOST catalogue rows, the Gaia and Bailer-Jones rows
they match, a 733,901-row allStar and the target spectra (521,424 in the paper; the mock's cut-flow
decides how many), written as gzipped FITS chunk by chunk (catalogdb.mock.write_survey). Steps, each in
its own process (benchmarks/steps.py: wall time, peak RSS from os.wait4, resumable through OUT/state.json):

  mock     the survey files                      (no baseline)
  ingest   every catalogue                        psql \\copy of the Gaia CSV into a copy of gaia_source
  spectra  the target spectra, 2 workers          the notebook's loop (tests/spectra_reference.py), 200 files
  xmatch   LAMOST x APOGEE and x Gaia             astropy search_around_sky in memory, LAMOST x Gaia
  views    the sample views' counts              (no baseline)
  train    --train-steps steps; s/step x MAX_STEPS extrapolated   (no baseline)
  predict  every target, published                Keras model.predict in memory on a sample
  export   final_catalog in each format           astropy Table.write of the same rows
  cones    --cones SQL cone searches (q3c_radial_query, what TAP's CONTAINS becomes) on final_catalog
                                                  astropy: the same cones on the rows in memory

Prints JSON and writes OUT/paper_scale.json. Only small scales are meant for a shared 2-core machine.

    python benchmarks/paper_scale.py --out DIR [--scale 0.01] [--width-scale 0.25] [--train-steps 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from steps import load_state, run_steps, write_result  # noqa: E402

DATABASE = "catalogdb_paper_scale"
STEPS = ("mock", "ingest", "spectra", "xmatch", "views", "train", "predict", "export", "cones")
PAPER = {"lamost_rows": 7_060_679, "apogee_rows": 733_901, "target_spectra": 521_424, "training_spectra": 18_573}
LAMOST_ROWS_PER_STAR = 1.44  # write_survey's LAMOST rows per star (repeat visits): 7,855 for 5,473 stars
BASELINE_SAMPLE = 2_000  # spectra for the model.predict baseline
LOOP_SAMPLE = 200  # spectra files for the notebook loop's baseline (~20 files/s)


def _engine():
    import sqlalchemy as sa

    from catalogdb.db.server import server_url

    return sa.create_engine(sa.engine.make_url(server_url()).set(database=DATABASE))


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _psql_copy_gaia(eng, csv_path: Path) -> dict:
    """psql \\copy of the Gaia CSV into gaia_copy (gaia_source's columns and indexes, plus the file's extra ones)."""
    import sqlalchemy as sa
    from ingest import libpq_dsn, psql_binary

    header = csv_path.open().readline().strip().split(",")
    with eng.begin() as conn:
        conn.execute(sa.text("create table gaia_copy (like gaia_source including all)"))
        have = set(conn.execute(sa.text("select column_name from information_schema.columns "
                                        "where table_name = 'gaia_copy'")).scalars())
        for col in header:
            if col not in have:
                conn.execute(sa.text(f'alter table gaia_copy add column "{col}" text'))
    cmd = [psql_binary(), libpq_dsn(eng), "-v", "ON_ERROR_STOP=1", "-c",
           f"\\copy gaia_copy ({', '.join(header)}) from '{csv_path}' with (format csv, header true)"]
    seconds, _ = _timed(lambda: subprocess.run(cmd, check=True, capture_output=True, text=True))
    with eng.begin() as conn:
        rows = conn.execute(sa.text("select count(*) from gaia_copy")).scalar()
        conn.execute(sa.text("drop table gaia_copy"))
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def run_step(name: str, args: argparse.Namespace, state: dict) -> dict:
    """One step, in this process; returns what it measured (with its baseline)."""
    import numpy as np
    import sqlalchemy as sa

    survey = Path(args.out) / "survey"
    if name == "mock":
        from catalogdb.mock import write_survey

        stars = max(1000, round(PAPER["lamost_rows"] * args.scale / LAMOST_ROWS_PER_STAR))
        apogee_fraction = min(0.5, PAPER["apogee_rows"] * args.scale / 1.1 / stars)  # ~10 % duplicate entries
        counts = write_survey(survey, stars=stars, seed=args.seed, spectra="targets", apogee_fraction=apogee_fraction)
        return {"stars": stars, "apogee_fraction": apogee_fraction, **{k: counts[k] for k in (
            "lamost_rows", "gaia_rows", "bailer_jones_rows", "apogee_rows", "spectra_files") if k in counts}}
    if name == "ingest":
        from catalogdb.db import admin
        from catalogdb.demo import fresh_database
        from catalogdb.ingest.files import ingest_files
        from catalogdb.mock import CATALOGUE_FILES

        eng = fresh_database(DATABASE)
        admin.init(eng, "auto")
        out = {}
        for source, path in CATALOGUE_FILES.items():
            seconds, s = _timed(lambda source=source, path=path: ingest_files(eng, source, [survey / path]))
            out[source] = {"rows": s.inserted, "seconds": round(seconds, 2), "rows_per_s": round(s.inserted / seconds)}
        out["baseline_psql_copy_gaia"] = _psql_copy_gaia(eng, survey / CATALOGUE_FILES["gaia-dr3"])
        base = out["baseline_psql_copy_gaia"]
        out["gaia_ratio_vs_psql"] = round(out["gaia-dr3"]["rows_per_s"] / base["rows_per_s"], 2)
        return out
    eng = _engine()
    if name == "spectra":
        sys.path.insert(0, str(ROOT / "tests"))
        from spectra_reference import preprocess_reference

        from catalogdb.mock import SPECTRA_DIR
        from catalogdb.spectra_store import ingest_spectra

        seconds, s = _timed(lambda: ingest_spectra(eng, [survey / SPECTRA_DIR], workers=2))
        files = sorted((survey / SPECTRA_DIR).rglob("*.fits*"))[:LOOP_SAMPLE]
        base_seconds, _ = _timed(lambda: [preprocess_reference(f) for f in files])
        ours, base = s.stored / seconds, len(files) / base_seconds
        return {"stored": s.stored, "rejected": s.rejected, "seconds": round(seconds, 2), "spectra_per_s": round(ours),
                "baseline_notebook_loop_per_s": round(base), "baseline_sample": len(files),
                "ratio": round(ours / base, 2)}
    if name == "xmatch":
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        from catalogdb.xmatch import run_xmatch

        s = run_xmatch(eng)
        with eng.connect() as conn:
            lam = np.array(conn.execute(sa.text("select ra, dec from lamost_star")).all(), float)
            gaia = np.array(conn.execute(sa.text("select ra, dec from gaia_source")).all(), float)
        a, b = SkyCoord(lam[:, 0] * u.deg, lam[:, 1] * u.deg), SkyCoord(gaia[:, 0] * u.deg, gaia[:, 1] * u.deg)
        base_seconds, pairs = _timed(lambda: len(a.search_around_sky(b, 3 * u.arcsec)[0]))
        gaia_seconds = s.seconds["xmatch_lamost_gaia"]
        return {"pairs": s.pairs, "seconds": {k: round(v, 2) for k, v in s.seconds.items()},
                "baseline_astropy_gaia_seconds": round(base_seconds, 2), "baseline_astropy_gaia_pairs": pairs,
                "gaia_ratio_vs_astropy": round(base_seconds / gaia_seconds, 2)}
    if name == "views":
        with eng.connect() as conn:
            cutflow = {r.description: r.count for r in conn.execute(sa.text("select * from training_cutflow"))}
            targets = conn.execute(sa.text("select count(*) from targets join spectrum using (obsid)")).scalar()
        return {"cutflow": cutflow, "targets_with_spectrum": targets}
    if name == "train":
        from catalogdb.cnn.train import MAX_STEPS, train_model

        m = train_model(eng, max_steps=args.train_steps, folds=1, width_scale=args.width_scale, seed=1,
                        models_dir=Path(args.out) / "models")
        seconds = m["metrics"]["seconds"]
        return {"model_id": m["model_id"], "steps": args.train_steps, "width_scale": args.width_scale,
                "seconds": seconds, "seconds_per_step": round(seconds / args.train_steps, 3),
                "extrapolated_hours_at_max_steps": round(seconds / args.train_steps * MAX_STEPS / 3600, 1)}
    model_id = state["train"]["result"]["model_id"]
    if name == "predict":
        from catalogdb.cnn.predict import predict
        from catalogdb.cnn.registry import load_model

        seconds, result = _timed(lambda: predict(eng, model_id))
        net = load_model(eng, model_id).networks[0]
        with eng.connect() as conn:
            flux = np.stack([np.frombuffer(f, dtype="<f4") for (f,) in conn.execute(sa.text(
                "select flux from spectrum order by obsid limit :n"), {"n": BASELINE_SAMPLE})])
        net.predict(flux[:64, :, None], verbose=0)  # warm-up
        base_seconds, _ = _timed(lambda: net.predict(flux[:, :, None], verbose=0))
        ours, base = result["predicted"] / seconds, len(flux) / base_seconds
        return {**result, "seconds": round(seconds, 2), "spectra_per_s": round(ours, 1),
                "baseline_keras_predict_in_memory_per_s": round(base, 1), "ratio": round(ours / base, 2)}
    if name == "export":
        from astropy.table import Table

        from catalogdb.export import FORMATS, export

        out = {}
        folder = Path(args.out) / "export"
        folder.mkdir(exist_ok=True)
        with eng.connect() as conn:
            res = conn.execute(sa.text("select * from final_catalog"))
            names, records = list(res.keys()), res.all()
        rows = Table()  # NULL as NaN (numbers) or "" (text), as a user of astropy would have it
        for name, values in zip(names, zip(*records, strict=True) if records else [()] * len(names), strict=True):
            kind = next((v for v in values if v is not None), 0.0)
            rows[name] = (np.array(["" if v is None else str(v) for v in values]) if isinstance(kind, str) else
                          np.array([np.nan if v is None else float(v) for v in values]))
        for fmt in FORMATS:
            path = folder / f"final_catalog.{fmt}"
            seconds, n = _timed(lambda path=path, fmt=fmt: export(eng, path, "final_catalog", fmt))
            astropy_fmt = {"csv": "ascii.csv", "votable": "votable", "fits": "fits", "parquet": "parquet"}[fmt]
            base_seconds, _ = _timed(lambda fmt=fmt, f=astropy_fmt: rows.write(folder / f"astropy.{fmt}", format=f,
                                                                            overwrite=True))
            out[fmt] = {"rows": n, "seconds": round(seconds, 2),
                        "baseline_astropy_write_seconds": round(base_seconds, 2),
                        "ratio": round(base_seconds / seconds, 2)}
        return out
    if name == "cones":
        rng = np.random.default_rng(3)
        with eng.connect() as conn:
            pos = np.array(conn.execute(sa.text("select ra, dec from final_catalog")).all(), float)
            centres = pos[rng.integers(0, len(pos), args.cones)]
            t0 = time.perf_counter()
            found = [conn.execute(sa.text("select count(*) from final_catalog where "
                                          "q3c_radial_query(ra, dec, :ra, :dec, 0.5)"),
                                  {"ra": float(c[0]), "dec": float(c[1])}).scalar() for c in centres]
            seconds = time.perf_counter() - t0
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        sky = SkyCoord(pos[:, 0] * u.deg, pos[:, 1] * u.deg)
        base_seconds, base = _timed(lambda: [int((sky.separation(SkyCoord(c[0] * u.deg, c[1] * u.deg)).deg
                                                  <= 0.5).sum()) for c in centres])
        return {"cones": len(centres), "radius_deg": 0.5, "rows_found": int(sum(found)), "same_counts": found == base,
                "ms_per_cone": round(1000 * seconds / len(centres), 2),
                "baseline_astropy_ms_per_cone": round(1000 * base_seconds / len(centres), 2),
                "ratio": round(base_seconds / seconds, 2)}
    raise ValueError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="working folder (survey files, models, state.json)")
    parser.add_argument("--scale", type=float, default=0.01, help="fraction of the paper's sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width-scale", type=float, default=0.25)
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--cones", type=int, default=200)
    parser.add_argument("--run-step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.run_step:  # the child: run one step, leave its result for the parent
        write_result(out, args.run_step, run_step(args.run_step, args, load_state(out)))
        return
    state = run_steps(__file__, sys.argv[1:], out, STEPS)
    result = {"what": "benchmarks/paper_scale.py: every step at the paper's sizes x scale, with its baseline",
              "command": " ".join([Path(sys.executable).name, "benchmarks/paper_scale.py", *sys.argv[1:]]),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "scale": args.scale, "paper": PAPER,
              "steps": {name: {k: state[name][k] for k in ("seconds", "peak_rss_mb", "result")} for name in STEPS},
              "total_seconds_without_train": round(sum(state[n]["seconds"] for n in STEPS if n != "train"), 1)}
    (out / "paper_scale.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
