"""Each Dask path against its local baseline, same run: spectra ingest, the Gaia crossmatch, predict.

A mock survey (--stars targets, every one with a spectrum; its Gaia table also as HATS) goes into fresh
databases on the embedded server. Local baseline: `ingest spectra --workers W` (W processes),
the q3c crossmatch (after ingesting all of Gaia, timed too) and `predict`. Dask: the same three with
`--dask local:W` (a LocalCluster of W worker processes, started and closed inside every timed call:
worker start-up is included), the crossmatch through LSDB over the HATS Gaia, loading only matched rows.
Then each Dask path again on a cluster already running (its scheduler address, as on a real cluster;
predict's workers then hold the model already): the steady per-spectrum costs the README's "Past one
machine" projection uses. Also printed: a LocalCluster's start-up and close alone. The network is the
paper's (--width-scale 1.0) with seeded weights: speed does not depend on training.

    .venv/bin/python benchmarks/dask_paths.py [--stars 400] [--workers 2] [--width-scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from catalogdb import dask_workers, runs
from catalogdb.cnn.predict import predict
from catalogdb.config import Settings
from catalogdb.db import admin
from catalogdb.db.server import server_url, stop_embedded
from catalogdb.ingest.files import ingest_files
from catalogdb.mock import CATALOGUE_FILES, GAIA_HATS, SPECTRA_DIR, write_survey
from catalogdb.spectra import process_files
from catalogdb.spectra_store import BATCH, _write_batch, ingest_spectra, spectrum_files
from catalogdb.xmatch import run_xmatch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict import register_network  # noqa: E402
from steps import timed  # noqa: E402


def database(server: str) -> sa.Engine:
    """A new empty database with the schema."""
    name = f"bench_dask_{uuid.uuid4().hex[:8]}"
    with sa.create_engine(server, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    engine = sa.create_engine(sa.engine.make_url(server).set(database=name))
    admin.init(engine, "compat")
    return engine


def cluster_start_close(address: str) -> float:
    """Seconds to start a LocalCluster, run one task on it and close it."""
    def run() -> int:
        with dask_workers.client(address) as client:
            return client.submit(int, 1).result()

    return timed(run)[0]


def per_spectrum_ms(seconds: float, n: int) -> float:
    """Milliseconds per spectrum."""
    return round(1000 * seconds / max(n, 1), 2)


def predictions(engine: sa.Engine, model_id: str) -> np.ndarray:
    """The model's predicted labels, by obsid."""
    with engine.connect() as conn:
        return np.array(conn.execute(sa.text(
            "select cnn_teff, cnn_logg, cnn_feh, cnn_mg, cnn_bprp from cnn_prediction where model_id = :m "
            "order by obsid"), {"m": model_id}).all(), dtype=float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stars", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--width-scale", type=float, default=1.0)
    args = parser.parse_args()
    address = f"local:{args.workers}"
    home = Path(tempfile.mkdtemp(prefix="catalogdb-bench-dask-"))
    cfg = Settings(url=None, home=home)
    server = server_url(cfg)
    survey = home / "survey"
    out: dict = {"stars": args.stars, "workers": args.workers, "dask": address, "cpus": os.cpu_count()}
    try:
        out["mock_seconds"], _ = timed(lambda: write_survey(survey, stars=args.stars, seed=5, spectra="all",
                                                            gaia_hats=True))
        local, remote = database(server), database(server)
        for source in CATALOGUE_FILES:
            seconds, _ = timed(lambda s=source: ingest_files(local, s, [survey / CATALOGUE_FILES[s]]))
            if source == "gaia-dr3":
                out["local_gaia_ingest_seconds"] = seconds
            else:
                ingest_files(remote, source, [survey / CATALOGUE_FILES[source]])
        out["cluster_start_close_seconds"] = cluster_start_close(address)

        spectra = [survey / SPECTRA_DIR]
        warm_db = database(server)
        hats = str(survey / GAIA_HATS)
        model_id = register_network(local, args.width_scale, home / "models")
        t_local, s_local = timed(lambda: ingest_spectra(local, spectra, workers=args.workers))
        t_dask, s_dask = timed(lambda: ingest_spectra(remote, spectra, dask=address))
        t_lx, x_local = timed(lambda: run_xmatch(local, jobs=args.workers))
        t_dx, x_dask = timed(lambda: run_xmatch(remote, jobs=args.workers, gaia_hats=hats, dask=address))
        t_lp, p_local = timed(lambda: predict(local, model_id, all_spectra=True))
        theirs = predictions(local, model_id)
        t_dp, p_dask = timed(lambda: predict(local, model_id, all_spectra=True, dask=address))
        ours = predictions(local, model_id)
        with dask_workers.client(address) as running:  # a cluster already up: its address, as on a real cluster
            warm = running.scheduler.address
            t_ws, _ = timed(lambda: ingest_spectra(warm_db, spectra, dask=warm))
            t_wx, _ = timed(lambda: run_xmatch(remote, jobs=args.workers, gaia_hats=hats, dask=warm))
            predict(local, model_id, all_spectra=True, dask=warm)  # the workers load the network once
            t_wp, _ = timed(lambda: predict(local, model_id, all_spectra=True, dask=warm))
        n, n_p = s_local.found, p_local["predicted"]
        # The driver's share, the ceiling however many workers: the COPY of preprocessed spectra.
        processed = list(process_files(spectrum_files(spectra), workers=1))
        copy_db = database(server)
        with copy_db.begin() as conn:
            run_id = runs.start(conn, "bench", {})
        t_copy, _ = timed(lambda: [_write_batch(copy_db, processed[i:i + BATCH], run_id)
                                   for i in range(0, len(processed), BATCH)])
        out["spectra"] = {"n": n, "local_seconds": t_local, "dask_seconds": t_dask, "dask_warm_seconds": t_ws,
                          "local_ms_per_spectrum": per_spectrum_ms(t_local, n),
                          "dask_warm_ms_per_spectrum": per_spectrum_ms(t_ws, n),
                          "driver_copy_ms_per_spectrum": per_spectrum_ms(t_copy, len(processed)),
                          "same_count": s_local.stored == s_dask.stored}
        out["xmatch"] = {"gaia_pairs": x_local.pairs["xmatch_lamost_gaia"], "q3c_seconds": t_lx,
                         "q3c_plus_full_gaia_ingest_seconds": round(t_lx + out["local_gaia_ingest_seconds"], 2),
                         "lsdb_seconds": t_dx, "lsdb_warm_seconds": t_wx, "same_pairs": x_local.pairs == x_dask.pairs}
        out["predict"] = {"n": n_p, "width_scale": args.width_scale, "local_seconds": t_lp, "dask_seconds": t_dp,
                          "dask_warm_seconds": t_wp, "local_ms_per_spectrum": per_spectrum_ms(t_lp, n_p),
                          "dask_warm_ms_per_spectrum": per_spectrum_ms(t_wp, n_p),
                          "same_count": n_p == p_dask["predicted"],
                          "max_relative_difference": float(np.max(np.abs(ours - theirs) / np.abs(theirs)))}
        print(json.dumps(out, indent=2))
    finally:
        stop_embedded(cfg)


if __name__ == "__main__":
    main()
