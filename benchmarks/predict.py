"""`catalogdb predict` end to end (database -> CNN -> database) against Keras' model.predict in memory.

A fresh database on the embedded server holds N synthetic target spectra and a registered model
(the paper's network at --width-scale, seeded weights: speed does not depend on training). Measured
in the same run: Keras `model.predict` on the flux already in a NumPy array (its default batch size),
and catalogdb's predict from the targets view to cnn_prediction, with the same numbers checked to 1e-4.

    .venv/bin/python benchmarks/predict.py [--n 2000] [--width-scale 1.0] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from catalogdb.cnn import N_PIXELS
from catalogdb.cnn.model import build_model
from catalogdb.cnn.predict import predict
from catalogdb.cnn.registry import LabelScaler, load_model
from catalogdb.config import Settings
from catalogdb.db import admin
from catalogdb.db.server import server_url, stop_embedded

SCALER = LabelScaler(np.array([5800.0, 4.3, -0.1, 4.2, 0.8]), np.array([400.0, 0.2, 0.3, 0.8, 0.15]))


def setup(engine: sa.Engine, n: int, width_scale: float, models: Path) -> str:
    """N synthetic targets with spectra, and one registered network."""
    rng = np.random.default_rng(0)
    flux = (1 + 0.05 * rng.standard_normal((n, N_PIXELS))).astype("<f4")
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        with cur.copy("copy lamost_star (obsid, ra, dec, snrg, teff, logg, feh, gaia_g_mean_mag) "
                      "from stdin (format binary)") as copy:
            copy.set_types(["int8", "float8", "float8", "float4", "float4", "float4", "float4", "float4"])
            for i in range(n):
                copy.write_row((i + 1, float(rng.uniform(0, 360)), float(rng.uniform(-10, 80)), 30.0, 5800.0,
                                4.4, 0.0, 14.0))
        with cur.copy("copy spectrum (obsid, flux, flag, path, checksum, run_id) from stdin (format binary)") as copy:
            copy.set_types(["int8", "bytea", "int2", "text", "text", "int8"])
            for i in range(n):
                copy.write_row((i + 1, flux[i].tobytes(), 0, f"synthetic/{i}", "-", 0))
    return register_network(engine, width_scale, models)


def register_network(engine: sa.Engine, width_scale: float, models: Path) -> str:
    """Register one seeded network of the paper's architecture at `width_scale`; returns its model_id."""
    model_id = f"bench-w{width_scale}"
    folder = models / model_id
    folder.mkdir(parents=True)
    net = build_model(width_scale)
    net.save(folder / "fold0.keras")
    (folder / "scaler.json").write_text(json.dumps(SCALER.to_json()))
    (folder / "config.json").write_text(json.dumps({"model_id": model_id, "model_files": ["fold0.keras"]}))
    with engine.begin() as conn:
        conn.execute(sa.text("insert into cnn_model (model_id, path, config, training_rows, training_checksum, "
                             "code_version, metrics, sigma_mg, run_id) values (:m, :p, '{}', 0, '-', '-', '{}', "
                             "0.2546, 0)"), {"m": model_id, "p": str(folder)})
    return model_id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--width-scale", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=1024)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="catalogdb-bench-"))
    cfg = Settings(url=None, home=home)
    engine = sa.create_engine(server_url(cfg))
    try:
        admin.init(engine, "compat")
        model_id = setup(engine, args.n, args.width_scale, home / "models")
        model = load_model(engine, model_id)
        with engine.connect() as conn:
            flux = np.stack([np.frombuffer(b, dtype="<f4") for (b,) in
                             conn.execute(sa.text("select flux from spectrum order by obsid"))])
        net = model.networks[0]
        net.predict(flux[:64, :, None], verbose=0)  # warm-up: graph tracing is not inference
        start = time.perf_counter()
        reference = SCALER.inverse(net.predict(flux[:, :, None], verbose=0))
        keras_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = predict(engine, model_id, batch_size=args.batch_size)
        ours_seconds = time.perf_counter() - start
        with engine.connect() as conn:
            ours = np.array(conn.execute(sa.text("select cnn_teff, cnn_logg, cnn_feh, cnn_mg, cnn_bprp "
                                                 "from cnn_prediction order by obsid")).all(), dtype=float)
        scaled_diff = np.abs((ours - reference) / SCALER.std).max()
        print(json.dumps({
            "spectra": args.n, "width_scale": args.width_scale, "parameters": int(net.count_params()),
            "keras_predict_in_memory_per_s": round(args.n / keras_seconds, 1),
            "catalogdb_predict_end_to_end_per_s": round(result["predicted"] / ours_seconds, 1),
            "end_to_end_over_keras": round(keras_seconds / ours_seconds, 2),
            "batch_size": args.batch_size, "max_abs_difference_in_label_sigmas": float(scaled_diff),
        }, indent=2))
    finally:
        engine.dispose()
        stop_embedded(cfg)


if __name__ == "__main__":
    main()
