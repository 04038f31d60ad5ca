"""CNN figures on this machine: seconds per training epoch and predict spectra/s, full size and scaled down.

Prints one JSON object. Each configuration is timed against plain `model.predict` on the same network in
the same run (catalogdb's predict wraps it: the ratio shows the wrapper's overhead), and the training
epoch time is extrapolated to the paper's 14,858-spectrum reference set. With --read N (default 10000)
it also times reading N spectra from the training_set view into NumPy (embedded server, fresh
database), against a plain fetchall of the same flux bytes from the spectrum table.

    python benchmarks/cnn.py [--spectra 256] [--epochs 2] [--batch-size 64] [--read 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from catalogdb import paper  # noqa: E402 - after the path set-up


def bench_network(width_scale: float, n: int, epochs: int, batch_size: int) -> dict:
    import keras
    from test_cnn import synthetic_flux, synthetic_stars

    from catalogdb.cnn.model import build_model, compile_model
    from catalogdb.cnn.registry import LabelScaler, LoadedModel

    stars = synthetic_stars(n, seed=0)
    flux = synthetic_flux(stars)
    labels = np.stack([stars[k] for k in ("teff", "logg", "feh", "mg", "bprp0")], 1)
    scaler = LabelScaler.fit(labels)
    keras.utils.set_random_seed(0)
    net = compile_model(build_model(width_scale))
    x, y = flux[:, :, None], scaler.transform(labels)
    net.fit(x[:batch_size], y[:batch_size], epochs=1, batch_size=batch_size, verbose=0)  # compile/trace
    t = time.perf_counter()
    net.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    per_epoch = (time.perf_counter() - t) / epochs

    ensemble = LoadedModel("bench", [net], scaler)

    def best_rate(fn) -> float:
        fn()  # the first call traces the predict function for this batch shape
        times = []
        for _ in range(2):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return n / min(times)

    plain = best_rate(lambda: net.predict(x, batch_size=256, verbose=0))
    ours = best_rate(lambda: ensemble.predict(flux))
    return {"width_scale": width_scale, "parameters": int(net.count_params()), "spectra": n,
            "batch_size": batch_size, "epochs_timed": epochs, "seconds_per_epoch": round(per_epoch, 3),
            "seconds_per_paper_epoch_extrapolated": round(per_epoch * paper.REFERENCE_ROWS / n, 1),
            "predict_spectra_per_s": round(ours, 1), "plain_model_predict_spectra_per_s": round(plain, 1)}


def bench_read(n: int) -> dict:
    import sqlalchemy as sa
    from test_cnn import insert_synthetic_training_set

    from catalogdb.cnn.data import load_training_data
    from catalogdb.config import Settings
    from catalogdb.db import admin
    from catalogdb.db.server import server_url, stop_embedded
    from conftest import create_database

    home = Path(tempfile.mkdtemp(prefix="catalogdb-bench-"))
    cfg = Settings(url=os.environ.get("CATALOGDB_URL") or None, home=home)
    engine = sa.create_engine(create_database(server_url(cfg), "bench"))
    admin.init(engine, "compat")
    t = time.perf_counter()
    for start in range(0, n, 2000):  # chunks keep the synthetic flux small in memory
        insert_synthetic_training_set(engine, min(2000, n - start), seed=start, first_obsid=1_000_000 + start)
    insert_s = time.perf_counter() - t
    with engine.connect() as conn:
        conn.execute(sa.text("analyze spectrum"))
        conn.commit()
    t = time.perf_counter()
    data = load_training_data(engine)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select obsid, flux from spectrum order by obsid")).all()
        flux = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
    plain = time.perf_counter() - t
    assert len(data) == len(flux) == n
    engine.dispose()
    if cfg.url is None:  # the embedded server this benchmark started
        stop_embedded(cfg)
        shutil.rmtree(home, ignore_errors=True)
    return {"spectra": n, "mbytes": round(n * 4875 * 4 / 1e6, 1), "insert_s": round(insert_s, 1),
            "training_view_read_s": round(ours, 2), "training_view_spectra_per_s": round(n / ours),
            "plain_fetchall_spectrum_table_s": round(plain, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectra", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--read", type=int, default=10_000, help="spectra to read from the database (0: skip)")
    parser.add_argument("--widths", default="1.0,0.25", help="width scales to time")
    args = parser.parse_args()

    import keras

    out = {"benchmark": "cnn", "backend": keras.backend.backend(), "keras": keras.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(),
           "reference": {"paper_cnn_2_cores_tf": {"predict_spectra_per_s": 99, "seconds_per_2048_spectra": 84},
                         "h200_jax_seconds_per_14858_epoch": 0.46, "h200_torch_predict_spectra_per_s": 36600}}
    out["networks"] = [bench_network(float(w), args.spectra, args.epochs, args.batch_size)
                       for w in args.widths.split(",") if w]
    if args.read:
        out["read"] = bench_read(args.read)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
