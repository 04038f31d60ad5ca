"""The schema on one SQLAlchemy MetaData: every column with its unit, UCD and description.

The survey tables come from their catalogue declarations (catalogdb/sources/*.toml, read by catalogues.py);
the tables catalogdb fills itself (runs, spectra, crossmatches, models, predictions) are declared here.
Column names are the surveys' own (lower case, as PostgreSQL folds them). TAP metadata and the file exports
read this module; the migrations hold their own DDL, and tests/test_schema.py checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from catalogdb.db.catalogues import ForeignKey, catalogue, make_table, sources

metadata = sa.MetaData()

F8 = sa.Double
F4 = sa.REAL


def col(name: str, type_, unit: str | None, ucd: str | None, description: str, *args, **kw) -> sa.Column:
    """A column carrying its unit and UCD in `info` and its description as the SQL comment."""
    return sa.Column(name, type_, *args, comment=description, info={"unit": unit, "ucd": ucd}, **kw)


def published(*foreign_keys: ForeignKey) -> dict:
    """Table info of a table TAP publishes, with its logical foreign keys (TAP_SCHEMA.keys)."""
    return {"published": True, "foreign_keys": foreign_keys}


# The survey catalogues, each from its declaration (lamost_star, gaia_source, gaia_distance, apogee_star and
# the comparison catalogues of Sects. 4.2-4.3).
CATALOGUE_TABLES = {source: make_table(catalogue(source), metadata) for source in sources()}

run = sa.Table(
    "run",
    metadata,
    col("run_id", sa.BigInteger, None, "meta.id", "Run identifier", primary_key=True, autoincrement=True),
    col("command", sa.Text, None, None, "catalogdb command that ran", nullable=False),
    col("parameters", JSONB, None, None, "Command parameters", nullable=False, server_default="{}"),
    col("inputs", JSONB, None, None, "Input files with sizes and SHA-256 checksums", nullable=False,
        server_default="[]"),
    col("row_counts", JSONB, None, None, "Rows read, inserted, updated, rejected", nullable=False,
        server_default="{}"),
    col("code_version", sa.Text, None, None, "catalogdb version", nullable=False),
    col("status", sa.Text, None, None, "running, done or failed", nullable=False, server_default="running"),
    col("started_at", sa.DateTime(timezone=True), None, "time.start", "Start time", nullable=False,
        server_default=sa.func.now()),
    col("finished_at", sa.DateTime(timezone=True), None, "time.end", "End time"),
    comment="Provenance: one row per ingest, crossmatch, training or prediction run",
)


spectrum = sa.Table(
    "spectrum",
    metadata,
    col("obsid", sa.BigInteger, None, "meta.id;meta.main", "LAMOST spectrum identifier (header OBSID)",
        primary_key=True),
    col("flux", sa.LargeBinary, None, "phot.flux.density;arith.ratio",
        "Normalised flux on 3925..8799 A in 1 A steps: 4875 little-endian float32 values", nullable=False),
    col("flag", sa.SmallInteger, None, "meta.code.qual",
        "1 when pixels outside [0.1, 1.2] were set to 1.0 during preprocessing", nullable=False),
    col("snrg", F4, None, "stat.snr", "Signal-to-noise ratio in g from the spectrum header"),
    col("path", sa.Text, None, "meta.file", "Source FITS file", nullable=False),
    col("checksum", sa.Text, None, None, "SHA-256 of the source file", nullable=False),
    col("run_id", sa.BigInteger, None, "meta.id", "Ingest run", nullable=False),
    comment="Preprocessed LAMOST LRS spectra (Sect. 2.2 of Shen & Luo 2024), the CNN's input",
)

spectrum_reject = sa.Table(
    "spectrum_reject",
    metadata,
    col("path", sa.Text, None, "meta.file", "Source FITS file", primary_key=True),
    col("checksum", sa.Text, None, None, "SHA-256 of the source file", nullable=False),
    col("obsid", sa.BigInteger, None, "meta.id", "Header OBSID when it could be read"),
    col("reason", sa.Text, None, "meta.note", "Why the spectrum cannot be used", nullable=False),
    col("run_id", sa.BigInteger, None, "meta.id", "Ingest run", nullable=False),
    comment="Spectrum files that could not be used, with the reason",
)




xmatch_lamost_apogee = sa.Table(
    "xmatch_lamost_apogee",
    metadata,
    col("obsid", sa.BigInteger, None, "meta.id", "LAMOST obsid", primary_key=True),
    col("apogee_id", sa.Text, None, "meta.id.cross", "APOGEE_ID", primary_key=True),
    col("telescope", sa.Text, None, "instr.tel", "APOGEE telescope", primary_key=True),
    col("field", sa.Text, None, "meta.id", "APOGEE field", primary_key=True),
    col("sep_arcsec", F8, "arcsec", "pos.angDistance", "Angular separation", nullable=False),
    col("rank", sa.SmallInteger, None, "meta.number",
        "Order of the matches of this obsid: primary allStar entries before duplicates (EXTRATARG bit 4), then by "
        "separation, then by (apogee_id, telescope, field)", nullable=False),
    col("best", sa.Boolean, None, "meta.code",
        "True for rank 1: the nearest primary entry (a duplicate entry only when no primary one is in the radius)",
        nullable=False),
    col("run_id", sa.BigInteger, None, "meta.id", "Crossmatch run", nullable=False),
    comment="LAMOST x APOGEE pairs within the crossmatch radius (1 arcsec in the paper); a duplicate allStar entry "
            "of a star never wins over its primary entry",
    info=published(ForeignKey("lamost_star", (("obsid", "obsid"),), "LAMOST side"),
                   ForeignKey("apogee_star", (("apogee_id", "apogee_id"), ("telescope", "telescope"),
                                              ("field", "field")), "APOGEE side")),
)

xmatch_lamost_gaia = sa.Table(
    "xmatch_lamost_gaia",
    metadata,
    col("obsid", sa.BigInteger, None, "meta.id", "LAMOST obsid", primary_key=True),
    col("source_id", sa.BigInteger, None, "meta.id.cross", "Gaia DR3 source_id", primary_key=True),
    col("sep_arcsec", F8, "arcsec", "pos.angDistance", "Angular separation", nullable=False),
    col("rank", sa.SmallInteger, None, "meta.number",
        "Order of the matches of this obsid: by separation, then by source_id", nullable=False),
    col("best", sa.Boolean, None, "meta.code", "True for rank 1: the nearest match", nullable=False),
    col("run_id", sa.BigInteger, None, "meta.id", "Crossmatch run", nullable=False),
    comment="LAMOST x Gaia DR3 pairs within the crossmatch radius (3 arcsec in the paper)",
    info=published(ForeignKey("lamost_star", (("obsid", "obsid"),), "LAMOST side"),
                   ForeignKey("gaia_source", (("source_id", "source_id"),), "Gaia side")),
)

cnn_model = sa.Table(
    "cnn_model",
    metadata,
    col("model_id", sa.Text, None, "meta.id;meta.main", "Model identifier", primary_key=True),
    col("created_at", sa.DateTime(timezone=True), None, "time.creation", "When training finished",
        nullable=False, server_default=sa.func.now()),
    col("path", sa.Text, None, "meta.file", "Folder with the saved model(s), label scaler and config",
        nullable=False),
    col("config", JSONB, None, None, "Training configuration (epochs, batch size, folds, widths, seed)",
        nullable=False),
    col("training_rows", sa.Integer, None, "meta.number", "Rows of the training view used", nullable=False),
    col("training_checksum", sa.Text, None, None, "Checksum of the training rows (obsid, labels, split)",
        nullable=False),
    col("code_version", sa.Text, None, None, "catalogdb version", nullable=False),
    col("metrics", JSONB, None, None, "Per-label test bias, scatter and MSE; distance errors", nullable=False),
    col("sigma_mg", F8, "mag", "stat.stdev;phys.magAbs", "Test-set scatter of M_G (sigma_M of Eq. 4)"),
    col("run_id", sa.BigInteger, None, "meta.id", "Training run", nullable=False),
    comment="CNN model registry",
)

cnn_prediction = sa.Table(
    "cnn_prediction",
    metadata,
    col("model_id", sa.Text, None, "meta.id", "Model that made the prediction", primary_key=True),
    col("obsid", sa.BigInteger, None, "meta.id;meta.main", "LAMOST obsid", primary_key=True),
    col("cnn_teff", F4, "K", "phys.temperature.effective", "CNN effective temperature"),
    col("cnn_teff_err", F4, "K", "stat.error;phys.temperature.effective", "Spread of the fold models' Teff"),
    col("cnn_logg", F4, "dex", "phys.gravity", "CNN log g"),
    col("cnn_logg_err", F4, "dex", "stat.error;phys.gravity", "Spread of the fold models' log g"),
    col("cnn_feh", F4, "dex", "phys.abund.Fe", "CNN [Fe/H]"),
    col("cnn_feh_err", F4, "dex", "stat.error;phys.abund.Fe", "Spread of the fold models' [Fe/H]"),
    col("cnn_mg", F4, "mag", "phys.magAbs;em.opt", "CNN absolute G magnitude M_G"),
    col("cnn_mg_err", F4, "mag", "stat.error;phys.magAbs", "Spread of the fold models' M_G"),
    col("cnn_bprp", F4, "mag", "phot.color", "CNN intrinsic colour (BP-RP)_0"),
    col("cnn_bprp_err", F4, "mag", "stat.error;phot.color", "Spread of the fold models' (BP-RP)_0"),
    col("a_g", F4, "mag", "phys.absorption;em.opt", "G-band extinction used for the distance"),
    col("a_g_source", sa.Text, None, "meta.note", "bp_rp (1.8626 (bp_rp - cnn_bprp)) or ag_gspphot"),
    col("cnn_distance", F4, "pc", "pos.distance", "Mode of the distance PDF (Eq. 5)"),
    col("distance_p16", F4, "pc", "pos.distance;stat.min", "16th percentile of the distance PDF"),
    col("distance_p50", F4, "pc", "pos.distance;stat.median", "Median of the distance PDF"),
    col("distance_p84", F4, "pc", "pos.distance;stat.max", "84th percentile of the distance PDF"),
    col("x", F4, "pc", "pos.cartesian.x", "Galactocentric X"),
    col("y", F4, "pc", "pos.cartesian.y", "Galactocentric Y"),
    col("z", F4, "pc", "pos.cartesian.z", "Galactocentric Z"),
    col("r", F4, "pc", "pos.distance", "Galactocentric cylindrical radius R"),
    col("run_id", sa.BigInteger, None, "meta.id", "Prediction run", nullable=False),
    comment="CNN predictions per spectrum and model, with distances and galactocentric coordinates",
    info=published(ForeignKey("lamost_star", (("obsid", "obsid"),), "LAMOST catalogue row")),
)

# `catalogdb explain` (Sect. 5.1) and `catalogdb baselines` (Appendix C)
feature_importance = sa.Table(
    "feature_importance",
    metadata,
    col("model_id", sa.Text, None, "meta.id", "CNN model explained (cnn_model.model_id)", primary_key=True),
    col("label", sa.Text, None, "meta.id", "Output label: teff, logg, feh, mg or bprp0", primary_key=True),
    col("grp", sa.Text, None, "meta.code",
        "Group of stars: hot/cool (Teff > / <= 5000 K), metal_rich/metal_poor ([Fe/H] >= / < 0) or all",
        primary_key=True),
    col("wavelength", sa.SmallInteger, "Angstrom", "em.wl", "Rest-frame vacuum wavelength of the pixel",
        primary_key=True),
    col("importance", F4, None, "stat.value",
        "Mean absolute Shapley value of the pixel over the group's stars, normalised to sum to 1 over the "
        "pixels of the (label, grp) curve", nullable=False),
    sa.ForeignKeyConstraint(["model_id"], ["cnn_model.model_id"], ondelete="CASCADE"),
    comment="CNN feature importance per wavelength pixel (Shapley values, Sect. 5.1 and Figs. 15-16 of Shen & Luo "
            "2024)",
)

baseline_model = sa.Table(
    "baseline_model",
    metadata,
    col("model_id", sa.Text, None, "meta.id", "CNN model whose training set and split were used", primary_key=True),
    col("name", sa.Text, None, "meta.id", "cnn, lightgbm, random_forest, knn or ridge", primary_key=True),
    col("params", JSONB, None, None, "Inputs, search grid, chosen hyper-parameters, CV score, timings",
        nullable=False),
    col("test_mse", JSONB, None, None, "Test-set MSE per label in physical units (K^2, dex^2, mag^2)",
        nullable=False),
    col("weighted_mse", F8, None, "stat.fit.residual",
        "Weighted mean MSE of Table C.1: mean over labels of MSE / variance of the label on the reference set"),
    col("created_at", sa.DateTime(timezone=True), None, "time.creation", "When the model was evaluated",
        nullable=False, server_default=sa.func.now()),
    sa.ForeignKeyConstraint(["model_id"], ["cnn_model.model_id"], ondelete="CASCADE"),
    comment="Baseline regressors on the CNN's training set and split, with test MSEs (Appendix C, Table C.1)",
)

# Control state: what the ingest loaded, which predict run each model's predictions came from, what is published.
ingested_file = sa.Table(
    "ingested_file",
    metadata,
    col("run_id", sa.BigInteger, None, "meta.id", "Ingest run", primary_key=True),
    col("path", sa.Text, None, "meta.file", "Survey file", primary_key=True),
    col("sha256", sa.Text, None, None, "SHA-256 of the file", nullable=False),
    col("size", sa.BigInteger, "byte", "phys.size", "File size", nullable=False),
    col("source", sa.Text, None, "meta.id", "Catalogue declaration it was read with (catalogdb/sources/)",
        nullable=False),
    col("table_name", sa.Text, None, "meta.id", "Table it was loaded into", nullable=False),
    col("rows", sa.BigInteger, None, "meta.number", "Rows read from it", nullable=False),
    col("ingested_at", sa.DateTime(timezone=True), None, "time.processing", "When the ingest committed",
        nullable=False, server_default=sa.func.now()),
    comment="One row per survey file an ingest loaded; a file whose checksum is here for its source is skipped",
)

prediction_run = sa.Table(
    "prediction_run",
    metadata,
    col("model_id", sa.Text, None, "meta.id", "CNN model", primary_key=True),
    col("run_id", sa.BigInteger, None, "meta.id", "The predict run that wrote its cnn_prediction rows",
        nullable=False),
    col("row_count", sa.BigInteger, None, "meta.number", "Rows that run wrote to cnn_prediction", nullable=False),
    col("predicted_at", sa.DateTime(timezone=True), None, "time.processing", "When those rows were committed",
        nullable=False, server_default=sa.func.now()),
    comment="One row per model with predictions: the predict run whose rows cnn_prediction holds for it",
)

release = sa.Table(
    "release",
    metadata,
    col("release_id", sa.BigInteger, None, "meta.id", "Release number, increasing", sa.Identity(always=True),
        primary_key=True),
    col("model_id", sa.Text, None, "meta.id", "CNN model whose predictions were published", nullable=False),
    col("predict_run_id", sa.BigInteger, None, "meta.id", "The run that wrote those predictions to cnn_prediction"),
    col("publish_run_id", sa.BigInteger, None, "meta.id", "The publish run"),
    col("row_count", sa.BigInteger, None, "meta.number", "Rows written to final_catalog", nullable=False),
    col("published_at", sa.DateTime(timezone=True), None, "time.processing", "When final_catalog was replaced",
        nullable=False, server_default=sa.func.now()),
    comment="One row per catalogdb publish: the model whose predictions final_catalog holds; the newest is current",
)

gradient_binning = sa.Table(
    "gradient_binning",
    metadata,
    col("name", sa.Text, None, "meta.id", "radial (Table 3) or vertical (Table 4)", primary_key=True),
    col("x", sa.Text, None, "meta.id", "Column of gradient_sample the slope is taken against", nullable=False),
    col("bin_by", sa.Text, None, "meta.id", "Column of gradient_sample the bins are taken in", nullable=False),
    col("bin_start", F8, "kpc", "stat.min", "Lower edge of the first bin", nullable=False),
    col("bin_stop", F8, "kpc", "stat.max", "Upper edge of the last bin (closed)", nullable=False),
    col("bin_width", F8, "kpc", "arith.diff", "Bin width", nullable=False),
    col("x_min", F8, "kpc", "stat.min", "Smallest x used", nullable=False),
    col("x_max", F8, "kpc", "stat.max", "Largest x used", nullable=False),
    col("description", sa.Text, None, "meta.note", "The paper's table it reproduces", nullable=False),
    comment="The bins of the gradient tables, read by gradient_table()",
)
