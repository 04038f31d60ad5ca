"""The paper's training size end to end: a mock whose cut-flow leaves >= 15,000 training spectra, then
every step of the pipeline, with the science checked against the mock's truth and the paper.

Prints one JSON object (and writes it to OUT/science.json): per label the test scatter and response,
overall and per S/N_g bin, beside the paper's; the ridge and LightGBM baselines on the same split
with Table C.1's weighted MSE; the distance errors against the true distance and against r_med_geo;
the gradient slope per bin against the same stars' true slope; wall time and peak memory per step.

Resumable step by step (benchmarks/steps.py): each step runs in its own process (its peak RSS is that
process's, from wait4; the PostgreSQL server's memory is not in it) and records itself in OUT/state.json;
a rerun with the same OUT skips the steps already done.

    python benchmarks/science.py --out DIR [--stars 70000] [--apogee-fraction 0.5] [--width-scale 0.25]
        [--folds 1] [--max-steps N] [--batch-size B] [--learning-rate LR] [--backend tensorflow|jax|torch]

On a GPU machine: `--backend jax --width-scale 1 --folds 5` trains the paper's network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from steps import run_or_dispatch  # noqa: E402

from catalogdb import paper  # noqa: E402 - after the path set-up

DATABASE = "catalogdb_science"
STEPS = ("mock", "ingest", "spectra", "xmatch", "train", "baselines", "predict", "truth")
# Sect. 3 and 4.2 of Shen & Luo (2024), from PAPER.md


def _engine():
    import sqlalchemy as sa

    from catalogdb.db.server import server_url

    return sa.create_engine(sa.engine.make_url(server_url()).set(database=DATABASE))


def run_step(name: str, args: argparse.Namespace, state: dict) -> dict:
    """One step, in this process; returns what it measured."""
    survey = Path(args.out) / "survey"
    if name == "mock":
        from catalogdb.mock import write_survey

        return write_survey(survey, stars=args.stars, seed=args.seed, spectra="targets",
                            apogee_fraction=args.apogee_fraction)
    if name == "ingest":
        from catalogdb.db import admin
        from catalogdb.demo import fresh_database
        from catalogdb.ingest.files import ingest_files
        from catalogdb.mock import CATALOGUE_FILES

        eng = fresh_database(DATABASE)
        admin.init(eng, "auto")
        rows = {}
        for source, path in CATALOGUE_FILES.items():
            rows[source] = ingest_files(eng, source, [survey / path]).inserted
        return {"rows": rows}
    eng = _engine()
    if name == "spectra":
        from catalogdb.mock import SPECTRA_DIR
        from catalogdb.spectra_store import ingest_spectra

        s = ingest_spectra(eng, [survey / SPECTRA_DIR], workers=2)
        return {"stored": s.stored, "rejected": s.rejected}
    if name == "xmatch":
        import sqlalchemy as sa

        from catalogdb.xmatch import run_xmatch

        run_xmatch(eng)
        with eng.connect() as conn:
            cutflow = {r.description: r.count for r in conn.execute(sa.text("select * from training_cutflow"))}
            targets = conn.execute(sa.text("select count(*) from targets join spectrum using (obsid)")).scalar()
        return {"cutflow": cutflow, "targets_with_spectrum": targets}
    if name == "train":
        from catalogdb.cnn.train import train_model

        m = train_model(eng, max_steps=args.max_steps, folds=args.folds, width_scale=args.width_scale, seed=1,
                        batch_size=args.batch_size, learning_rate=args.learning_rate,
                        models_dir=Path(args.out) / "models")
        return {"model_id": m["model_id"], "config": {k: m["config"][k] for k in (
                    "batch_size", "learning_rate", "folds", "width_scale", "max_steps", "backend")},
                "metrics": m["metrics"]}
    model_id = state["train"]["result"]["model_id"]
    if name == "baselines":
        from catalogdb.baselines import run_baselines

        return {r["name"]: {"weighted_mse": r["weighted_mse"], "test_mse": r["test_mse"],
                            "labels": r["params"].get("labels"), "seconds": r["params"].get("seconds")}
                for r in run_baselines(eng, models=("ridge", "lightgbm"), model_id=model_id)}
    if name == "predict":
        from catalogdb.cnn.predict import predict

        return predict(eng, model_id)
    if name == "truth":
        from catalogdb.mock.truth import distances_against_truth, gradients_against_truth

        feh_response = state["train"]["result"]["metrics"]["labels"]["feh"]["response"]
        return {"distance_vs_true": distances_against_truth(eng, survey),
                "gradients": gradients_against_truth(eng, survey, feh_response)}
    raise ValueError(name)


def summary(state: dict) -> dict:
    """The figures the issue asks for, beside the paper's."""
    train = state["train"]["result"]
    labels = train["metrics"]["labels"]
    base = state["baselines"]["result"]
    out = {"labels": {k: {"scatter": m["scatter"], "paper_scatter": paper.TEST_SCATTER[k], "response": m["response"],
                          "by_snrg": m["by_snrg"],
                          **{f"{b}_scatter": base[b]["labels"][k]["scatter"] for b in ("ridge", "lightgbm")},
                          **{f"{b}_response": base[b]["labels"][k]["response"] for b in ("ridge", "lightgbm")}}
                      for k, m in labels.items()},
           "weighted_mse": {name: r["weighted_mse"] for name, r in base.items()},
           "converged": train["metrics"]["converged"], "networks": train["metrics"]["networks"],
           "distance": {"vs_r_med_geo_test_set": train["metrics"]["distance"],
                        "vs_true_targets": state["truth"]["result"]["distance_vs_true"],
                        "paper": {"frac_median": paper.DISTANCE_MEDIAN_FRACTION,
                                  "frac_std": paper.DISTANCE_STD_FRACTION}},
           "gradients": state["truth"]["result"]["gradients"],
           "steps": {name: {k: state[name][k] for k in ("seconds", "peak_rss_mb")} for name in STEPS}}
    big = [r for rows in out["gradients"].values() for r in rows if r["cnn"]["n"] >= 1000 and r["ratio"] is not None]
    out["checks"] = {"cnn_beats_ridge_and_lightgbm": base["cnn"]["weighted_mse"] < min(
                         base["ridge"]["weighted_mse"], base["lightgbm"]["weighted_mse"]),
                     "feh_response": labels["feh"]["response"],
                     "min_gradient_ratio_n_ge_1000": min((r["ratio"] for r in big), default=None),
                     "bins_n_ge_1000": len(big)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="working folder (survey files, models, state.json)")
    parser.add_argument("--stars", type=int, default=70_000)
    parser.add_argument("--apogee-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width-scale", type=float, default=0.25)
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="default: catalogdb.cnn.train.MAX_STEPS")
    parser.add_argument("--batch-size", type=int, default=None, help="default: catalogdb.cnn.train.recipe")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: catalogdb.cnn.train.recipe")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--run-step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    state = run_or_dispatch(__file__, sys.argv[1:], out, STEPS, run_step, args,
                            env={**os.environ, "KERAS_BACKEND": args.backend})
    if state is None:  # a child ran its step
        return
    result = {"what": "benchmarks/science.py: the pipeline at the paper's training size on the mock survey",
              "command": " ".join([Path(sys.executable).name, "benchmarks/science.py", *sys.argv[1:]]),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                          "backend": args.backend},
              "mock": {"stars": args.stars, "apogee_fraction": args.apogee_fraction, "seed": args.seed},
              **summary(state)}
    (out / "science.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
