"""The paper's scale end to end: a mock at the paper's sizes times --scale, then every step with its baseline.

Sizes at --scale 1 (Shen & Luo 2024): 7,060,679 LAMOST catalogue rows, the Gaia and Bailer-Jones rows
they match, a 733,901-row allStar and the target spectra (521,424 in the paper; the mock's cut-flow
decides how many), written as gzipped FITS chunk by chunk (catalogdb.mock.write_survey). Steps, each in
its own process (benchmarks/steps.py: wall time, peak RSS from os.wait4, resumable through OUT/state.json),
and each baseline as a step of its own right after it, so that its memory is not counted in the step's:

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from steps import run_or_dispatch, timed  # noqa: E402

from catalogdb import paper  # noqa: E402 - after the path set-up
from catalogdb.mock.real_layout import ALLSTAR_ROWS  # noqa: E402

DATABASE = "catalogdb_paper_scale"
STEPS = ("mock", "ingest", "ingest_baseline", "spectra", "spectra_baseline", "xmatch", "xmatch_baseline", "views",
         "train", "predict", "predict_baseline", "export", "export_baseline", "cones", "cones_baseline")
# The sizes to reach at --scale 1: the paper's (and DR17 allStar's, which it crossmatches), as catalogdb declares them.
PAPER = {"lamost_rows": paper.CUTFLOW[1], "apogee_rows": ALLSTAR_ROWS, "target_spectra": paper.TARGETS_PREPROCESSED,
         "training_spectra": paper.TRAINING_ROWS}
LAMOST_ROWS_PER_STAR = 1.44  # write_survey's LAMOST rows per star (repeat visits): 7,855 for 5,473 stars
BASELINE_SAMPLE = 2_000  # spectra for the model.predict baseline
LOOP_SAMPLE = 200  # spectra files for the notebook loop's baseline (~20 files/s)
CONE_DEG = 0.5


def _engine():
    import sqlalchemy as sa

    from catalogdb.db.server import server_url

    return sa.create_engine(sa.engine.make_url(server_url()).set(database=DATABASE))


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
    seconds, _ = timed(lambda: subprocess.run(cmd, check=True, capture_output=True, text=True))
    with eng.begin() as conn:
        rows = conn.execute(sa.text("select count(*) from gaia_copy")).scalar()
        conn.execute(sa.text("drop table gaia_copy"))
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def run_step(name: str, args: argparse.Namespace, state: dict) -> dict:
    """One step (or its baseline: a step of its own, so that its memory is not the step's), in this process."""
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
            seconds, s = timed(lambda source=source, path=path: ingest_files(eng, source, [survey / path]))
            out[source] = {"rows": s.inserted, "seconds": round(seconds, 2), "rows_per_s": round(s.inserted / seconds)}
        return out
    eng = _engine()
    if name == "ingest_baseline":
        from catalogdb.mock import CATALOGUE_FILES

        return _psql_copy_gaia(eng, survey / CATALOGUE_FILES["gaia-dr3"])
    if name == "spectra":
        from catalogdb.mock import SPECTRA_DIR
        from catalogdb.spectra_store import ingest_spectra

        seconds, s = timed(lambda: ingest_spectra(eng, [survey / SPECTRA_DIR], workers=2))
        return {"stored": s.stored, "rejected": s.rejected, "seconds": round(seconds, 2),
                "spectra_per_s": round(s.stored / seconds, 1)}
    if name == "spectra_baseline":
        sys.path.insert(0, str(ROOT / "tests"))
        from spectra_reference import preprocess_reference

        from catalogdb.mock import SPECTRA_DIR

        files = sorted((survey / SPECTRA_DIR).rglob("*.fits*"))[:LOOP_SAMPLE]
        seconds, _ = timed(lambda: [preprocess_reference(f) for f in files])
        return {"files": len(files), "seconds": round(seconds, 2), "spectra_per_s": round(len(files) / seconds, 1)}
    if name == "xmatch":
        from catalogdb.xmatch import run_xmatch

        s = run_xmatch(eng)
        return {"pairs": s.pairs, "seconds": {k: round(v, 2) for k, v in s.seconds.items()}}
    if name == "xmatch_baseline":
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        with eng.connect() as conn:
            fetch, (lam, gaia) = timed(lambda: [np.array(conn.execute(sa.text(f"select ra, dec from {t}")).all(),
                                                          float) for t in ("lamost_star", "gaia_source")])
        a, b = SkyCoord(lam[:, 0] * u.deg, lam[:, 1] * u.deg), SkyCoord(gaia[:, 0] * u.deg, gaia[:, 1] * u.deg)
        seconds, pairs = timed(lambda: len(a.search_around_sky(b, 3 * u.arcsec)[0]))
        return {"astropy_seconds": round(seconds, 2), "pairs": pairs, "fetch_seconds": round(fetch, 2)}
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

        seconds, result = timed(lambda: predict(eng, model_id))
        return {**result, "seconds": round(seconds, 2), "spectra_per_s": round(result["predicted"] / seconds, 1)}
    if name == "predict_baseline":
        from catalogdb.cnn.registry import load_model

        net = load_model(eng, model_id).networks[0]
        with eng.connect() as conn:
            flux = np.stack([np.frombuffer(f, dtype="<f4") for (f,) in conn.execute(sa.text(
                "select flux from spectrum order by obsid limit :n"), {"n": BASELINE_SAMPLE})])
        net.predict(flux[:64, :, None], verbose=0)  # warm-up: graph tracing is not inference
        seconds, _ = timed(lambda: net.predict(flux[:, :, None], verbose=0))
        return {"spectra": len(flux), "seconds": round(seconds, 2), "spectra_per_s": round(len(flux) / seconds, 1)}
    folder = Path(args.out) / "export"
    folder.mkdir(exist_ok=True)
    from catalogdb.export import FORMATS

    if name == "export":
        from catalogdb.export import export

        out = {}
        for fmt in FORMATS:
            seconds, n = timed(lambda fmt=fmt: export(eng, folder / f"final_catalog.{fmt}", "final_catalog", fmt))
            out[fmt] = {"rows": n, "seconds": round(seconds, 2)}
        return out
    if name == "export_baseline":
        from astropy.table import Table

        with eng.connect() as conn:
            res = conn.execute(sa.text("select * from final_catalog"))
            names, records = list(res.keys()), res.all()
        rows = Table()  # NULL as NaN (numbers) or "" (text), as a user of astropy would have it
        for name_, values in zip(names, zip(*records, strict=True) if records else [()] * len(names), strict=True):
            kind = next((v for v in values if v is not None), 0.0)
            rows[name_] = (np.array(["" if v is None else str(v) for v in values]) if isinstance(kind, str) else
                           np.array([np.nan if v is None else float(v) for v in values]))
        astropy_format = {"ecsv": "ascii.ecsv", "votable": "votable", "fits": "fits", "parquet": "parquet"}
        return {fmt: {"seconds": round(timed(lambda fmt=fmt: rows.write(
            folder / f"astropy.{fmt}", format=astropy_format[fmt], overwrite=True))[0], 2)} for fmt in FORMATS}
    rng = np.random.default_rng(3)
    with eng.connect() as conn:
        pos = np.array(conn.execute(sa.text("select ra, dec from final_catalog")).all(), float)
    centres = pos[rng.integers(0, len(pos), args.cones)]
    if name == "cones":
        with eng.connect() as conn:
            seconds, found = timed(lambda: [conn.execute(sa.text(
                "select count(*) from final_catalog where q3c_radial_query(ra, dec, :ra, :dec, :r)"),
                {"ra": float(c[0]), "dec": float(c[1]), "r": CONE_DEG}).scalar() for c in centres])
        return {"cones": len(centres), "radius_deg": CONE_DEG, "found": found,
                "ms_per_cone": round(1000 * seconds / len(centres), 2)}
    if name == "cones_baseline":
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        sky = SkyCoord(pos[:, 0] * u.deg, pos[:, 1] * u.deg)
        seconds, found = timed(lambda: [int((sky.separation(SkyCoord(c[0] * u.deg, c[1] * u.deg)).deg
                                               <= CONE_DEG).sum()) for c in centres])
        return {"found": found, "ms_per_cone": round(1000 * seconds / len(centres), 2)}
    raise ValueError(name)


def ratios(state: dict) -> dict:
    """Each step against its baseline (> 1: ours is faster)."""
    r = {k: state[k]["result"] for k in STEPS}
    return {
        "ingest_gaia_vs_psql_copy": round(r["ingest"]["gaia-dr3"]["rows_per_s"]
                                          / r["ingest_baseline"]["rows_per_s"], 2),
        "spectra_vs_notebook_loop": round(r["spectra"]["spectra_per_s"] / r["spectra_baseline"]["spectra_per_s"], 2),
        "xmatch_gaia_vs_astropy_in_memory": round(r["xmatch_baseline"]["astropy_seconds"]
                                                  / r["xmatch"]["seconds"]["xmatch_lamost_gaia"], 2),
        "xmatch_same_pairs": r["xmatch"]["pairs"]["xmatch_lamost_gaia"] == r["xmatch_baseline"]["pairs"],
        "predict_end_to_end_vs_keras_in_memory": round(r["predict"]["spectra_per_s"]
                                                       / r["predict_baseline"]["spectra_per_s"], 2),
        **{f"export_{fmt}_vs_astropy_write": round(r["export_baseline"][fmt]["seconds"]
                                                   / r["export"][fmt]["seconds"], 2) for fmt in r["export"]},
        "cones_vs_astropy_in_memory": round(r["cones_baseline"]["ms_per_cone"] / r["cones"]["ms_per_cone"], 2),
        "cones_same_counts": r["cones"]["found"] == r["cones_baseline"]["found"],
    }


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
    state = run_or_dispatch(__file__, sys.argv[1:], out, STEPS, run_step, args)
    if state is None:  # a child ran its step
        return
    result = {"what": "benchmarks/paper_scale.py: every step at the paper's sizes x scale, with its baseline",
              "command": " ".join([Path(sys.executable).name, "benchmarks/paper_scale.py", *sys.argv[1:]]),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "scale": args.scale, "paper": PAPER,
              "ratios": ratios(state),
              "steps": {name: {k: state[name][k] for k in ("seconds", "peak_rss_mb", "result")} for name in STEPS},
              "pipeline_seconds_without_train": round(sum(state[n]["seconds"] for n in STEPS
                                                          if n != "train" and not n.endswith("_baseline")), 1)}
    (out / "paper_scale.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
