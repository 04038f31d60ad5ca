"""The `catalogdb` command: each command is a thin call into one module."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from catalogdb import paper
from catalogdb.console import print_pairs
from catalogdb.errors import CatalogdbError

app = typer.Typer(help="LAMOST x Gaia solar-like star catalogue in PostgreSQL (Shen & Luo 2024).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: init, status, upgrade, downgrade, stop.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err_console = Console(stderr=True)


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int | None], None]]:
    """A rich progress display and the callback steps report to: (step name, done, total or None)."""
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def report(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done, total=total)

        yield report


class Q3CMode(str, Enum):
    auto = "auto"
    extension = "extension"
    compat = "compat"


@db_app.command("init")
def db_init(q3c: Q3CMode = typer.Option(Q3CMode.auto, help="q3c extension, catalogdb's compat functions, or auto")):
    """Install q3c and create the schema (migrate to head)."""
    from catalogdb.db import admin
    from catalogdb.db.server import engine

    mode = admin.init(engine(), q3c.value)
    console.print(f"database ready (q3c: {mode})")
    _print_status()


@db_app.command("status")
def db_status():
    """Server, PostgreSQL version, q3c mode, schema revision and row counts."""
    _print_status()


def _print_status() -> None:
    from catalogdb.db import admin
    from catalogdb.db.server import engine

    st = admin.status(engine())
    console.print(f"server:    {st.server}")
    console.print(f"postgres:  {st.version}")
    console.print(f"q3c:       {st.q3c}")
    console.print(f"schema:    {st.revision or 'empty'} (head {st.head})")
    if st.rows:
        table = Table("table", "rows")
        for name, count in sorted(st.rows.items()):
            table.add_row(name, f"{count:,}")
        console.print(table)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")):
    """Migrate the schema up (and refresh TAP_SCHEMA from the declarations)."""
    from catalogdb.db import admin
    from catalogdb.db.server import engine

    admin.upgrade(engine(), revision)
    _print_status()


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="target revision, or base to remove everything")):
    """Migrate the schema down."""
    from catalogdb.db import migrate
    from catalogdb.db.server import engine

    migrate.downgrade(engine(), revision)
    _print_status()


@db_app.command("stop")
def db_stop():
    """Stop the embedded server."""
    from catalogdb.db.server import stop_embedded

    console.print("embedded server stopped" if stop_embedded() else "no embedded server running")


class OnError(str, Enum):
    abort = "abort"
    skip = "skip"


@app.command()
def ingest(
    source: str = typer.Argument(..., help="lamost-stellar, gaia-dr3, bailer-jones, apogee-allstar, or spectra"),
    files: list[Path] = typer.Argument(..., help="survey files (spectra: FITS files or folders)"),
    on_error: OnError = typer.Option(OnError.abort, help="abort: refuse a file with a bad row; skip: reject it"),
    workers: int = typer.Option(2, help="spectra: processes preprocessing in parallel"),
    dask: str = typer.Option(None, help="spectra: preprocess on this Dask cluster (scheduler address, or local[:N])"),
):
    """Load survey files into PostgreSQL (atomic, idempotent)."""
    from catalogdb.db.server import engine

    eng = engine()
    with progress_bars() as report:
        if source == "spectra":
            from catalogdb.spectra_store import ingest_spectra

            summary = ingest_spectra(eng, files, workers=workers, progress=report, dask=dask)
        else:
            from catalogdb.ingest.files import ingest_files

            summary = ingest_files(eng, source, files, on_error=on_error.value, progress=report)
    print_pairs(console, summary.rows())


@app.command()
def xmatch(
    apogee_radius: float = typer.Option(1.0, help="LAMOST x APOGEE radius, arcsec"),
    gaia_radius: float = typer.Option(3.0, help="LAMOST x Gaia radius, arcsec"),
    jobs: int = typer.Option(0, help="connections working in parallel (0: one per core here)"),
    gaia_hats: str = typer.Option(None, help="crossmatch Gaia through LSDB with this HATS catalogue (path or URL) "
                                  "and load only the matched rows"),
    dask: str = typer.Option(None, help="with --gaia-hats: the Dask cluster (scheduler address, or local[:N]; "
                             "default local)"),
):
    """Crossmatch LAMOST with APOGEE and Gaia by q3c_join; compute the Gaia parallax zero points.

    With --gaia-hats the Gaia side runs through LSDB on Dask instead (README, Past one machine).
    """
    from catalogdb.db.server import engine
    from catalogdb.errors import BadInput
    from catalogdb.xmatch import run_xmatch

    if dask and not gaia_hats:
        raise BadInput("--dask needs --gaia-hats: the q3c crossmatch runs inside PostgreSQL")
    with console.status("crossmatching"):
        summary = run_xmatch(engine(), apogee_radius, gaia_radius, jobs or None, gaia_hats, dask)
    print_pairs(console, summary.rows())


@app.command()
def cutflow():
    """The training-set cut-flow (Table 2 of the paper) from the training_cutflow view."""
    _print_view("select stage, description, count from training_cutflow order by stage")


@app.command()
def targets():
    """The target sample (Sect. 4.1) by reason, from the target_venn view."""
    _print_view("select no_parallax, low_parallax_over_error, no_gspphot_distance, count from target_venn")
    _print_view("select count(*) as targets from targets")


@app.command()
def train(
    max_steps: int = typer.Option(None, help="optimizer-step budget (default: catalogdb.cnn.train.MAX_STEPS); "
                                  "training stops on convergence (see below)"),
    batch_size: int = typer.Option(None, help="spectra per step (default: by training-set size, "
                                   "catalogdb.cnn.train.recipe)"),
    learning_rate: float = typer.Option(None, help="Adam learning rate (default: by training-set size; the "
                                        "paper's 1e-4 at its size)"),
    folds: int = typer.Option(5, help="fold models on the reference set (1: a single model)"),
    width_scale: float = typer.Option(1.0, help="multiply every layer's width (1.0 = the paper's 23.8M parameters)"),
    seed: int = typer.Option(0, help="random seed"),
):
    """Train the CNN on the training_set view to convergence and register it with its test metrics.

    The learning rate halves after 5 epochs without validation gain, three times; the next plateau
    ends training (converged). A network that uses up --max-steps first is registered as not converged.
    """
    from catalogdb.cnn.train import epoch_bars, train_model
    from catalogdb.db.server import engine

    with progress_bars() as report:
        result = train_model(engine(), max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                             folds=folds, width_scale=width_scale, seed=seed, progress=epoch_bars(report))
    console.print(f"model {result['model_id']} registered")
    models()


def _converged(metrics: dict) -> str:
    if metrics.get("imported"):
        return "n/a (imported)"  # trained by its authors: no training run here to have converged or not
    networks = metrics.get("networks", [])
    done = sum(bool(n.get("converged")) for n in networks)
    steps = sum(n.get("steps", 0) for n in networks)
    return f"{'yes' if networks and done == len(networks) else 'NO'} ({done}/{len(networks)}, {steps:,} steps)"


models_app = typer.Typer(help="Registered CNN models (listed without a subcommand); import the authors' network.")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models_main(ctx: typer.Context):
    """Registered CNN models: convergence, test-set scatter and response per label, distance error."""
    if ctx.invoked_subcommand is None:
        models()


@models_app.command("import")
def models_import(
    folder: Path = typer.Argument(..., help="the folder holding the authors' model/ (or model/ itself): "
                                  "model/cnn_model/ (TensorFlow SavedModel) and model/std_scaler.bin"),
    sigma_mg: float = typer.Option(None, help="sigma_M of the distance PDF, mag (default: the published 0.2546)"),
    scaler_json: Path = typer.Option(None, help='label scaler as JSON {"mean": [5], "scale": [5]} (teff, logg, '
                                     "feh, mg_geo, bp_rp_0) instead of model/std_scaler.bin"),
):
    """Register the authors' published CNN (Zenodo doi:10.5281/zenodo.13748129) for `catalogdb predict --model`.

    Download and unpack the Zenodo record by hand first; nothing is downloaded here. std_scaler.bin is a
    joblib file, that is a pickle: loading it runs code its writer chose, so only import files you trust
    (or give --scaler-json).
    """
    from catalogdb.cnn.authors import import_model
    from catalogdb.db.server import engine

    with console.status("converting the SavedModel"):
        result = import_model(engine(), folder, paper.SIGMA_MG if sigma_mg is None else sigma_mg, scaler_json)
    console.print(f"model {result['model_id']} registered (sigma_M = {result['sigma_mg']} mag)")
    models()


def models():
    """Registered CNN models: convergence, test-set scatter and response per label, distance error."""
    from catalogdb.cnn.registry import list_models
    from catalogdb.db.server import engine

    rows = list_models(engine())
    if not rows:
        console.print("no models registered: run `catalogdb train` or `catalogdb models import`")
        return
    table = Table("model", "created", "train rows", "converged", "Teff (K)", "log g", "[Fe/H]", "M_G", "(BP-RP)_0",
                  "dist. median", "dist. std",
                  title="test-set scatter / response (paper scatter: "
                        + ", ".join(f"{v:g}" for v in paper.TEST_SCATTER.values())
                        + f"; distance {paper.DISTANCE_MEDIAN_FRACTION:.1%}, {paper.DISTANCE_STD_FRACTION:.1%})")
    nan = float("nan")
    for row in rows:
        labels = row["metrics"].get("labels", {})
        distance = row["metrics"].get("distance", {})
        cells = [f"{m.get('scatter') or nan:.3g} / {m.get('response') or nan:.2f}"
                 for m in (labels.get(k, {}) for k in ("teff", "logg", "feh", "mg", "bprp0"))]
        table.add_row(row["model_id"], str(row["created_at"])[:16], f"{row['training_rows']:,}",
                      _converged(row["metrics"]), *cells,
                      f"{distance.get('frac_median') or nan:.1%}", f"{distance.get('frac_std') or nan:.1%}")
    console.print(table)


@app.command()
def predict(
    model: str = typer.Option(None, help="model id (default: the newest)"),
    all_spectra: bool = typer.Option(False, "--all-spectra", help="every stored spectrum, not only the targets"),
    batch_size: int = typer.Option(1024, help="spectra per inference batch"),
    dask: str = typer.Option(None, help="predict on this Dask cluster (scheduler address, or local[:N]); the "
                             "workers load the model from its folder"),
):
    """Predict labels, distances and X, Y, Z, R for the targets; write them to cnn_prediction."""
    from catalogdb.cnn.predict import predict as run_predict
    from catalogdb.db.server import engine

    with progress_bars() as report:
        result = run_predict(engine(), model, all_spectra, batch_size, progress=report, dask=dask)
    print_pairs(console, [(k, f"{v:,}" if isinstance(v, int) else str(v)) for k, v in result.items()])


@app.command()
def publish(model: str = typer.Option(None, help="model id (default: the newest predict run's model)")):
    """Replace final_catalog with one model's predictions (predict does this itself) and record the release."""
    from catalogdb.db.server import engine
    from catalogdb.publish import publish as run_publish

    release = run_publish(engine(), model)
    print_pairs(console, [(k, f"{v:,}" if isinstance(v, int) else str(v)) for k, v in release.items()])


@app.command()
def gradients(plot: Path = typer.Option(None, help="write a Fig. 14-style PNG here")):
    """Radial and vertical [Fe/H] gradients (Tables 3 and 4) beside the paper's slopes."""
    from catalogdb.db.server import engine
    from catalogdb.gradients import gradient_tables, plot_gradients

    tables = gradient_tables(engine())
    for name, published in (("radial", paper.RADIAL_GRADIENT), ("vertical", paper.VERTICAL_GRADIENT)):
        rows = tables[name]
        table = Table("|Z| (kpc)" if name == "radial" else "R (kpc)", "slope (dex/kpc)", "error",
                      "intercept", "error", "N", "paper slope", title=f"{name} gradient")
        for row in rows:
            table.add_row(f"{row['bin_center']:.2f}", f"{row['slope']:.4f}", f"{row['slope_err']:.4f}",
                          f"{row['intercept']:.3f}", f"{row['intercept_err']:.3f}", f"{row['n']:,}",
                          f"{published.get(round(row['bin_center'], 2), float('nan')):.3f}")
        console.print(table)
    if plot:
        plot_gradients(tables, plot)
        console.print(f"figure written to {plot}")


def _print_view(sql: str) -> None:
    import sqlalchemy as sa

    from catalogdb.console import print_rows
    from catalogdb.db.server import engine

    with engine().connect() as conn:
        print_rows(console, conn.execute(sa.text(sql)))


class SpectraChoice(str, Enum):
    all = "all"
    training = "training"
    targets = "targets"
    none = "none"


@app.command()
def mock(
    out: Path = typer.Option(..., help="folder to write the survey files into"),
    stars: int = typer.Option(20000, help="number of LAMOST target stars"),
    seed: int = typer.Option(1, help="random seed (same seed, same files)"),
    spectra: SpectraChoice = typer.Option(SpectraChoice.all, help="which stars get spectrum files"),
    gaia_hats: bool = typer.Option(False, "--gaia-hats", help="also write the Gaia table as a HATS catalogue "
                                   "(for `xmatch --gaia-hats`)"),
):
    """Simulate a galaxy and write it as LAMOST, Gaia, Bailer-Jones and APOGEE files."""
    from catalogdb.mock import write_survey

    with progress_bars() as report:
        summary = write_survey(out, stars=stars, seed=seed, spectra=spectra.value, progress=report,
                               gaia_hats=gaia_hats)
    table = Table("file", "rows")
    for name, count in summary.get("files", summary).items():
        table.add_row(str(name), f"{count:,}" if isinstance(count, int) else str(count))
    console.print(table)


@app.command()
def demo(
    stars: int = typer.Option(None, help="mock survey size (LAMOST target stars; default catalogdb.demo.DEMO_STARS)"),
    keep: bool = typer.Option(False, help="keep the mock survey files after the run"),
    out: Path = typer.Option(None, help="folder for the mock survey, the exported catalogue and demo.json"),
    max_steps: int = typer.Option(None, help="CNN optimizer-step budget (training stops on convergence)"),
    width_scale: float = typer.Option(None, help="CNN width (1.0 = the paper's network)"),
    apogee_fraction: float = typer.Option(None, help="share of the mock's stars also in APOGEE"),
):
    """The whole pipeline on a mock survey in a database of its own (catalogdb_demo)."""
    from catalogdb.demo import run_demo

    given = {"stars": stars, "max_steps": max_steps, "width_scale": width_scale, "apogee_fraction": apogee_fraction}
    with progress_bars() as report:
        run_demo(keep=keep, out=out, console=console, progress=report,
                 **{k: v for k, v in given.items() if v is not None})


@app.command()
def report(out: Path = typer.Option(Path("report"), help="folder for the figures and index.html")):
    """The paper's figures as PNGs and one HTML page with the cut-flow, metrics and gradient tables."""
    from catalogdb.db.server import engine
    from catalogdb.report import write_report

    with console.status("drawing the figures"):
        written = write_report(engine(), out)
    console.print(f"{len(written) - 1} figures and {written[-1]}")


@app.command()
def explain(
    model: str = typer.Option(None, help="model id (default: the newest)"),
    stars: int = typer.Option(2000, help="stars to explain"),
    split: str = typer.Option("teff:5000", help="groups: teff:5000 (hot/cool) or feh:0 (metal-rich/poor)"),
):
    """Shapley values of the CNN per wavelength pixel (Sect. 5.1), stored in feature_importance."""
    from catalogdb.db.server import engine
    from catalogdb.explain import explain_model

    result = explain_model(engine(), model_id=model, stars=stars, split=split)
    console.print(f"groups: {result['groups']}; {result['seconds']:.0f} s; figure: {result['figure']}")
    for label, groups in result["top"].items():
        for grp, top in groups.items():
            console.print(f"{label} {grp}: " + ", ".join(f"{w:.0f} A{f' ({line})' if line else ''}"
                                                         for w, _, line in top))


@app.command()
def baselines(models: str = typer.Option("lightgbm,random_forest,knn,ridge", help="comma-separated baselines")):
    """LightGBM, random forest, kNN and ridge on the CNN's split (Appendix C, Table C.1)."""
    from catalogdb.baselines import comparison_table, format_comparison, run_baselines
    from catalogdb.db.server import engine

    eng = engine()
    run_baselines(eng, models=tuple(m.strip() for m in models.split(",") if m.strip()))
    console.print(format_comparison(comparison_table(eng)))


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8080, help="TCP port"),
):
    """Serve the catalogue over IVOA TAP 1.1 at http://HOST:PORT/tap (pyvo, astroquery, TOPCAT)."""
    from catalogdb.tap.app import serve as run_server

    run_server(host, port)


@app.command()
def export(
    file: Path = typer.Argument(..., help="output file (hats: a new folder)"),
    format: str = typer.Option(None, help="ecsv (or csv), fits, votable, parquet or hats; default: from the suffix"),
    where: str = typer.Option(None, help="SQL condition on the rows, e.g. \"cnn_feh < -1\""),
    table: str = typer.Option("final_catalog", help="table or view to export"),
):
    """Write the catalogue to a file with units, UCDs and descriptions in its metadata.

    --format hats writes a HATS catalogue folder (HEALPix-partitioned Parquet with a margin) that LSDB opens.
    """
    from catalogdb.db.server import engine
    from catalogdb.export import export as run_export

    if format == "hats":
        from catalogdb.hats import export_hats

        with console.status("writing the HATS catalogue"):
            rows = export_hats(engine(), file, table, where)
    else:
        rows = run_export(engine(), file, table, format, where)  # checks the format against the writers
    console.print(f"{rows:,} rows of {table} written to {file}")


def main() -> None:
    """Entry point: run the app, turning catalogdb's errors into one line and an exit code."""
    try:
        app()
    except CatalogdbError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
