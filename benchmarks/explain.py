"""`catalogdb explain` figures on this machine: seconds to get Shapley values of N stars (default 2,000, the paper's).

Prints one JSON object. Times catalogdb.explain.shap_values (shap's GradientExplainer on the network, the
work `catalogdb explain` does per fold network) on synthetic spectra for a network of the given width,
against plain `model.predict` of the same stars in the same run (the cost of one forward pass: the
ratio is what one expected-gradient sample costs, times nsamples x 5 outputs). With --stars below 2000
the 2,000-star time is also extrapolated (the work is linear in the stars: chunks of 100).

    python benchmarks/explain.py [--stars 2000] [--nsamples 32] [--width 0.25] [--background 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from catalogdb import paper  # noqa: E402 - after the path set-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=paper.SHAP_STARS)
    parser.add_argument("--nsamples", type=int, default=None, help="expected-gradient samples per star")
    parser.add_argument("--width", type=float, default=0.25, help="width_scale of the network (1.0: the paper's)")
    parser.add_argument("--background", type=int, default=None)
    args = parser.parse_args()

    import keras
    from test_cnn import synthetic_flux, synthetic_stars

    from catalogdb.cnn.model import build_model
    from catalogdb.explain import DEFAULT_BACKGROUND, DEFAULT_NSAMPLES, shap_values

    nsamples = args.nsamples or DEFAULT_NSAMPLES
    n_bg = args.background or DEFAULT_BACKGROUND
    keras.utils.set_random_seed(0)
    net = build_model(args.width)
    flux = synthetic_flux(synthetic_stars(args.stars + n_bg, seed=0))
    stars, background = flux[:args.stars], flux[args.stars:]

    net.predict(stars[:256, :, None], batch_size=256, verbose=0)  # trace
    t = time.perf_counter()
    net.predict(stars[:, :, None], batch_size=256, verbose=0)
    predict_s = time.perf_counter() - t

    shap_values([net], stars[:4], background, nsamples=2)  # imports shap, traces the gradient function
    t = time.perf_counter()
    phi = shap_values([net], stars, background, nsamples=nsamples)
    shap_s = time.perf_counter() - t
    assert phi.shape == (args.stars, 4875, 5) and np.isfinite(phi).all()

    out = {"benchmark": "explain", "backend": keras.backend.backend(), "keras": keras.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(), "explainer": "shap.GradientExplainer",
           "width_scale": args.width, "parameters": int(net.count_params()), "networks": 1,
           "stars": args.stars, "nsamples": nsamples, "background": n_bg,
           "shap_seconds": round(shap_s, 1), "shap_stars_per_s": round(args.stars / shap_s, 2),
           "baseline_plain_predict_seconds": round(predict_s, 2),
           "shap_over_predict": round(shap_s / predict_s, 1),
           f"seconds_for_{paper.SHAP_STARS}_stars_per_network": round(shap_s * paper.SHAP_STARS / args.stars, 1)}
    if args.stars != paper.SHAP_STARS:
        out["extrapolated"] = True
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
