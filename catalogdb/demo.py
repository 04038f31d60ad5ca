"""`catalogdb demo`: the whole pipeline on a mock survey, in a database of its own, step by step."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from catalogdb.console import print_rows
from catalogdb.db import admin
from catalogdb.db.server import engine as default_engine
from catalogdb.mock.comparisons import SOURCES as COMPARISON_SOURCES

DEMO_DB = "catalogdb_demo"
# The demo's size, chosen so a fresh `make demo` on 2 cores ends within 10 minutes with a converged CNN
# (measured 2026-12-02 with a benchmark sharing the cores: 4 min 55 s in all, the CNN converged after 4,440
# steps in 237 s with the ridge baseline, [Fe/H] response 0.96, vertical-gradient ratios 0.91-0.95 in
# the bins with N >= 500). APOGEE overlap: the mock's default for 30,000 stars (8%) leaves ~800 training
# spectra, too few for the CNN to stop shrinking [Fe/H]; 25% leaves ~3,300.
DEMO_STARS = 30_000
DEMO_APOGEE_FRACTION = 0.25
DEMO_WIDTH = 0.25
DEMO_MAX_STEPS = 20_000  # a budget well above what convergence takes here, so it never decides


def fresh_database(name: str = DEMO_DB) -> sa.Engine:
    """Drop and create database `name` on the configured server; return its engine."""
    base = default_engine()
    with base.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.create_engine(base.url.set(database=name))


@contextmanager
def step(console: Console, title: str, seconds: dict[str, float] | None = None):
    """Print a step's title, then how long it took (also recorded in `seconds` under the title)."""
    console.rule(f"[bold]{title}")
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    if seconds is not None:
        seconds[title] = round(took, 1)
    console.print(f"[dim]{title}: {took:.1f} s[/dim]")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def _fit(fit: dict | None) -> str:
    return "" if fit is None or fit["slope"] is None else (
        f"{fit['slope']:.3f} ± {fit['slope_err']:.3f}" if fit["slope_err"] is not None else f"{fit['slope']:.3f}")


def print_model(console: Console, model: dict, ridge: dict | None = None) -> None:
    """Convergence of each network, then the test-set scatter and response per label beside the ridge's."""
    from catalogdb.cnn import LABELS

    for net in model["metrics"]["networks"]:
        status = "converged" if net["converged"] else "[bold red]NOT converged[/]"
        console.print(f"network {net['network']}: {status} after {net['steps']:,} steps ({net['epochs_run']} epochs, "
                      f"best {net['best_epoch']}, {net['lr_reductions']} learning-rate halvings)")
    table = Table("label", "CNN scatter", "CNN response", *(("ridge scatter", "ridge response") if ridge else ()),
                  *(f"S/N {b['snrg']}" for b in model["metrics"]["labels"]["feh"]["by_snrg"]),
                  title=f"test set ({model['metrics']['n_test']:,} spectra): scatter and response (slope of "
                        "predicted on true; 1 = no shrinkage); CNN scatter per S/N_g bin")
    for label in LABELS:
        m = model["metrics"]["labels"][label]
        r = ridge["params"]["labels"][label] if ridge else None
        table.add_row(label, _fmt(m["scatter"], ".3g"), _fmt(m["response"]),
                      *((_fmt(r["scatter"], ".3g"), _fmt(r["response"])) if r else ()),
                      *(_fmt(b["scatter"], ".3g") for b in m["by_snrg"]))
    console.print(table)


def print_gradients(console: Console, gradients: dict[str, list[dict]]) -> None:
    """Each gradient bin: the CNN slope against the same stars' true slope (ratio, sigma), the injected field."""
    for name, rows in gradients.items():
        table = Table("|Z| (kpc)" if name == "radial" else "R (kpc)", "N", "CNN", "truth (same stars)", "ratio",
                      "sigma", "expected ratio", "CNN at true R, Z", "injected",
                      title=f"{name} gradient (dex/kpc): CNN [Fe/H] and distances against the true [Fe/H] of "
                            "the same stars at their true positions")
        for row in rows:
            table.add_row(f"{row['bin_center']:.1f}", f"{row['cnn']['n']:,}", _fit(row["cnn"]), _fit(row["truth"]),
                          _fmt(row["ratio"], ".2f"), _fmt(row["sigma"], "+.1f"), _fmt(row["expected_ratio"], ".2f"),
                          _fit(row["cnn_true_position"]), _fmt(row["injected"]))
        console.print(table)


def run_demo(stars: int = DEMO_STARS, keep: bool = False, out: Path | None = None, max_steps: int = DEMO_MAX_STEPS,
             width_scale: float = DEMO_WIDTH, apogee_fraction: float = DEMO_APOGEE_FRACTION,
             console: Console | None = None, progress: Callable[[str, int, int | None], None] | None = None) -> dict:
    """Mock survey -> ingest -> spectra -> xmatch -> cut-flow -> CNN -> predict -> gradients -> export.

    With `out`, the figures of the run (response per label, convergence, gradient rows with their
    ratios, the time of each step) are also written to out/demo.json.
    """
    from catalogdb.baselines import run_baselines
    from catalogdb.cnn.predict import predict
    from catalogdb.cnn.train import epoch_bars, train_model
    from catalogdb.export import export
    from catalogdb.ingest.files import ingest_files
    from catalogdb.mock import CATALOGUE_FILES, SPECTRA_DIR, write_survey
    from catalogdb.mock.truth import distances_against_truth, gradients_against_truth
    from catalogdb.report import write_report
    from catalogdb.spectra_store import ingest_spectra
    from catalogdb.xmatch import run_xmatch

    console = console or Console()
    workdir = Path(out or tempfile.mkdtemp(prefix="catalogdb-demo-"))
    survey = workdir / "survey"
    seconds: dict[str, float] = {}
    result: dict = {"workdir": str(workdir), "stars": stars, "apogee_fraction": apogee_fraction, "seconds": seconds}

    with step(console, f"1. mock survey of {stars:,} stars (spectra of the training and target stars) -> {survey}",
              seconds):
        write_survey(survey, stars=stars, seed=1, spectra="targets", progress=progress,
                     apogee_fraction=apogee_fraction)
    with step(console, f"2. fresh database {DEMO_DB} (q3c: auto)", seconds):
        eng = fresh_database()
        result["q3c"] = admin.init(eng, "auto")
    with step(console, "3. ingest the catalogue files", seconds):
        for source, path in (*CATALOGUE_FILES.items(), *COMPARISON_SOURCES.items()):
            summary = ingest_files(eng, source, [survey / path], progress=progress)
            console.print(f"{source}: {summary.inserted:,} rows")
    with step(console, "4. ingest and preprocess the spectra", seconds):
        spectra = ingest_spectra(eng, [survey / SPECTRA_DIR], workers=2, progress=progress)
        console.print(f"{spectra.stored:,} stored, {spectra.rejected:,} rejected")
    with step(console, "5. crossmatch (q3c_join) and the sample views", seconds):
        xm = run_xmatch(eng)
        for label, value in xm.rows():
            console.print(f"{label}: {value}")
        with eng.connect() as conn:
            print_rows(console, conn.execute(sa.text("select * from training_cutflow order by stage")),
                       "training cut-flow (Table 2)")
            print_rows(console, conn.execute(sa.text("select * from target_venn")), "targets by reason (Fig. 8)")
    with step(console, f"6. train a CNN to convergence (width x{width_scale}, one network), and a ridge baseline",
              seconds):
        model = train_model(eng, max_steps=max_steps, folds=1, width_scale=width_scale, seed=1,
                            progress=epoch_bars(progress) if progress else None)
        ridge = run_baselines(eng, models=("ridge",), model_id=model["model_id"])[-1]
        print_model(console, model, ridge)
        result["model"] = {"model_id": model["model_id"], "converged": model["metrics"]["converged"],
                           "networks": model["metrics"]["networks"], "labels": model["metrics"]["labels"],
                           "distance": model["metrics"]["distance"], "batch_size": model["config"]["batch_size"],
                           "learning_rate": model["config"]["learning_rate"]}
        result["ridge"] = {"labels": ridge["params"]["labels"], "weighted_mse": ridge["weighted_mse"]}
        result["model_id"] = model["model_id"]
    with step(console, "7. predict the targets, distances and X, Y, Z, R", seconds):
        result["predict"] = predict(eng, model["model_id"], progress=progress)
        console.print(f"{result['predict']['predicted']:,} predictions written to cnn_prediction")
    with step(console, "8. distances and metallicity gradients against the mock's truth", seconds):
        result["distances"] = distances_against_truth(eng, survey)
        d = result["distances"]
        console.print(f"cnn_distance against the true distance: median fractional error {d['frac_median']:+.1%}, "
                      f"standard deviation {d['frac_std']:.1%} (paper, against r_med_geo: 3.7%, 8.2%); "
                      f"{d['within_p16_p84']:.0%} of true distances within p16-p84 ({d['n']:,} stars)")
        result["gradients"] = gradients_against_truth(eng, survey, model["metrics"]["labels"]["feh"]["response"])
        print_gradients(console, result["gradients"])
    with step(console, "9. comparisons with StarHorse, DistMass, astroNN, APOGEE and GALAH (Sects. 4.2-4.3)",
              seconds):
        with eng.connect() as conn:
            print_rows(console, conn.execute(sa.text("select * from compare_distance")), "distances (Fig. 10)")
            print_rows(console, conn.execute(sa.text("select * from compare_parameters")), "parameters (Fig. 11)")
    with step(console, "10. export the final catalogue and the report", seconds):
        path = workdir / "final_catalog.fits"
        result["exported"] = export(eng, path)
        console.print(f"{result['exported']:,} rows -> {path}")
        result["report"] = str(write_report(eng, workdir / "report")[-1])
        console.print(f"figures and report -> {result['report']}")
    url = eng.url.render_as_string(hide_password=True)
    console.rule("[bold]what to try next")
    console.print(f"""The demo database is {url}
  psql "{eng.url.set(drivername='postgresql').render_as_string(hide_password=False)}"
  SELECT obsid, cnn_teff, cnn_feh, cnn_distance FROM final_catalog
   WHERE q3c_radial_query(ra, dec, 180, 30, 5) ORDER BY cnn_distance LIMIT 10;
  SELECT * FROM gradient_radial;  SELECT * FROM training_cutflow;
TAP: CATALOGDB_URL={url.replace('***', '')} catalogdb serve, then in Python:
  import pyvo; pyvo.dal.TAPService("http://127.0.0.1:8080/tap").search("SELECT TOP 5 * FROM final_catalog")
Plots: the model folder under $CATALOGDB_HOME/models/{result['model_id']}; files in {workdir}""")
    if not keep:  # the spectrum files are most of the survey's size; the catalogues and truth stay
        import shutil

        shutil.rmtree(survey / SPECTRA_DIR, ignore_errors=True)
    eng.dispose()
    if out is not None:
        (workdir / "demo.json").write_text(json.dumps(result, indent=2, default=str))
    return result
