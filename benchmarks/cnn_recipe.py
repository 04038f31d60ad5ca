"""Which training recipe converges on a small training set: the paper's (batch 64, Adam 1e-4) or a
larger step (batch 32, 1e-3), each trained to convergence by catalogdb's plateau rule.

Builds the demo-sized mock (30,000 stars, 25% APOGEE overlap: ~2,400 training spectra), then trains
one network (width 0.25, folds=1) per recipe under the same step budget and prints JSON: steps,
convergence, best validation loss, wall time, and the test-set response and scatter per label.
This is the measurement behind `catalogdb.cnn.train.recipe`.

    python benchmarks/cnn_recipe.py [--stars 30000] [--apogee-fraction 0.25] [--max-steps 8000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RECIPES = ((32, 1e-3), (64, 1e-4))


def build(stars: int, apogee_fraction: float, survey: Path):
    from catalogdb.db import admin
    from catalogdb.demo import fresh_database
    from catalogdb.ingest.files import ingest_files
    from catalogdb.mock import CATALOGUE_FILES, SPECTRA_DIR, write_survey
    from catalogdb.spectra_store import ingest_spectra
    from catalogdb.xmatch import run_xmatch

    write_survey(survey, stars=stars, seed=1, spectra="training", apogee_fraction=apogee_fraction)
    eng = fresh_database("catalogdb_recipe")
    admin.init(eng, "auto")
    for source, path in CATALOGUE_FILES.items():
        ingest_files(eng, source, [survey / path])
    ingest_spectra(eng, [survey / SPECTRA_DIR], workers=2)
    run_xmatch(eng)
    return eng


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=30_000)
    parser.add_argument("--apogee-fraction", type=float, default=0.25)
    parser.add_argument("--max-steps", type=int, default=8_000)
    parser.add_argument("--width-scale", type=float, default=0.25)
    args = parser.parse_args()
    from catalogdb.cnn.train import train_model

    with tempfile.TemporaryDirectory() as tmp:
        eng = build(args.stars, args.apogee_fraction, Path(tmp) / "survey")
        runs = []
        for batch, lr in RECIPES:
            t = time.perf_counter()
            m = train_model(eng, max_steps=args.max_steps, batch_size=batch, learning_rate=lr, folds=1,
                            width_scale=args.width_scale, seed=1, models_dir=Path(tmp) / "models")
            (net,) = m["metrics"]["networks"]
            runs.append({"batch_size": batch, "learning_rate": lr, "seconds": round(time.perf_counter() - t),
                         "network": net, "response": {k: v["response"] for k, v in m["metrics"]["labels"].items()},
                         "scatter": {k: v["scatter"] for k, v in m["metrics"]["labels"].items()}})
    print(json.dumps({"what": "training recipes on a small training set, each to convergence",
                      "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                      "settings": vars(args), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
