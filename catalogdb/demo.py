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

from catalogdb.db import admin
from catalogdb.db.server import engine as default_engine
from catalogdb.mock.comparisons import SOURCES as COMPARISON_SOURCES

DEMO_DB = "catalogdb_demo"


def fresh_database(name: str = DEMO_DB) -> sa.Engine:
    """Drop and create database `name` on the configured server; return its engine."""
    base = default_engine()
    with base.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.create_engine(base.url.set(database=name))


@contextmanager
def step(console: Console, title: str):
    """Print a step's title, then how long it took."""
    console.rule(f"[bold]{title}")
    start = time.perf_counter()
    yield
    console.print(f"[dim]{title}: {time.perf_counter() - start:.1f} s[/dim]")


def print_rows(console: Console, rows, title: str | None = None) -> None:
    """A SQL result as a rich table (the CLI's view commands print through this too)."""
    rows = list(rows)
    if not rows:
        return
    table = Table(*rows[0]._mapping.keys(), title=title)
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int)
                        and not isinstance(v, bool) else str(v) for v in row))
    console.print(table)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def run_demo(stars: int = 30000, keep: bool = False, out: Path | None = None, epochs: int = 50,
             width_scale: float = 0.25, console: Console | None = None,
             progress: Callable[[str, int, int | None], None] | None = None) -> dict:
    """Mock survey -> ingest -> spectra -> xmatch -> cut-flow -> CNN -> predict -> gradients -> export."""
    from catalogdb.cnn.predict import predict
    from catalogdb.cnn.train import epoch_bars, train_model
    from catalogdb.export import export
    from catalogdb.load import ingest_files
    from catalogdb.mock import write_survey
    from catalogdb.mock.truth import distances_against_truth, gradients_against_truth
    from catalogdb.report import write_report
    from catalogdb.spectra_store import ingest_spectra
    from catalogdb.xmatch import run_xmatch

    console = console or Console()
    workdir = Path(out or tempfile.mkdtemp(prefix="catalogdb-demo-"))
    survey = workdir / "survey"
    result: dict = {"workdir": str(workdir)}

    with step(console, f"1. mock survey of {stars:,} stars (spectra of the training and target stars) -> {survey}"):
        write_survey(survey, stars=stars, seed=1, spectra="targets", progress=progress)
    with step(console, f"2. fresh database {DEMO_DB} (q3c: auto)"):
        eng = fresh_database()
        result["q3c"] = admin.init(eng, "auto")
    with step(console, "3. ingest the catalogue files"):
        for source, path in (("lamost-stellar", "lamost/dr9_v2.0_LRS_stellar.fits"),
                             ("gaia-dr3", "gaia/gaia_dr3_source.csv"),
                             ("bailer-jones", "gaia/bailer_jones_edr3.csv"),
                             ("apogee-allstar", "apogee/allStar-dr17-synspec_rev1.fits"),
                             *COMPARISON_SOURCES.items()):
            summary = ingest_files(eng, source, [survey / path], progress=progress)
            console.print(f"{source}: {summary.inserted:,} rows")
    with step(console, "4. ingest and preprocess the spectra"):
        spectra = ingest_spectra(eng, [survey / "lamost" / "spectra"], workers=2, progress=progress)
        console.print(f"{spectra.stored:,} stored, {spectra.rejected:,} rejected")
    with step(console, "5. crossmatch (q3c_join) and the sample views"):
        xm = run_xmatch(eng)
        for label, value in xm.rows():
            console.print(f"{label}: {value}")
        with eng.connect() as conn:
            print_rows(console, conn.execute(sa.text("select * from training_cutflow order by stage")),
                       "training cut-flow (Table 2)")
            print_rows(console, conn.execute(sa.text("select * from target_venn")), "targets by reason (Fig. 8)")
    with step(console, f"6. train a CNN (width x{width_scale}, up to {epochs} epochs, one model)"):
        model = train_model(eng, epochs=epochs, batch_size=64, folds=1, width_scale=width_scale, seed=1,
                            progress=epoch_bars(progress) if progress else None)
        result["model_id"] = model["model_id"]
        console.print_json(json.dumps(model.get("metrics", {}), default=str))
    with step(console, "7. predict the targets, distances and X, Y, Z, R"):
        result["predict"] = predict(eng, model["model_id"], progress=progress)
        console.print(f"{result['predict']['predicted']:,} predictions written to cnn_prediction")
    with step(console, "8. distances and metallicity gradients against the mock's truth"):
        result["distances"] = distances_against_truth(eng, survey)
        d = result["distances"]
        console.print(f"cnn_distance against the true distance: median fractional error {d['frac_median']:+.1%}, "
                      f"standard deviation {d['frac_std']:.1%} (paper, against r_med_geo: 3.7%, 8.2%); "
                      f"{d['within_p16_p84']:.0%} of true distances within p16-p84 ({d['n']:,} stars)")
        result["gradients"] = gradients_against_truth(eng, survey)
        for name, rows in result["gradients"].items():
            table = Table("|Z| (kpc)" if name == "radial" else "R (kpc)", "injected", "true [Fe/H], R, Z",
                          "CNN [Fe/H], true R, Z", "CNN [Fe/H] and distances", "N", "(CNN - injected) / err",
                          title=f"{name} gradient (dex/kpc)")
            for row in rows:
                true_d = row["true_distance"]
                slope, err, n = row["cnn_distance"]
                table.add_row(f"{row['bin_center']:.1f}", _fmt(row["injected"]), _fmt(row["true_feh_and_distance"]),
                              f"{true_d[0]:.3f} ± {true_d[1]:.3f}" if true_d else "",
                              f"{slope:.3f} ± {err:.3f}" if err is not None else _fmt(slope), f"{n:,}",
                              _fmt(row["sigma_off"], ".1f"))
            console.print(table)
    with step(console, "9. comparisons with StarHorse, DistMass, astroNN, APOGEE and GALAH (Sects. 4.2-4.3)"):
        with eng.connect() as conn:
            print_rows(console, conn.execute(sa.text("select * from compare_distance")), "distances (Fig. 10)")
            print_rows(console, conn.execute(sa.text("select * from compare_parameters")), "parameters (Fig. 11)")
    with step(console, "10. export the final catalogue and the report"):
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

        shutil.rmtree(survey / "lamost" / "spectra", ignore_errors=True)
    eng.dispose()
    return result
