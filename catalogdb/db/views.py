"""The final catalogue's columns: each names the table column it copies and inherits that column's metadata.

The SQL of prediction_catalog (and so of the final_catalog table) is frozen in the migrations
(catalogdb/db/sql/views/final_catalog/v1.sql, then 0012). Here each of its columns, in the same order, names
its source column: unit and UCD always come from there (declared once, in the catalogue files or schema.py);
a description may be reworded for the catalogue's reader. Only a computed column declares its own metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalogdb.db.catalogues import ForeignKey


@dataclass(frozen=True)
class ViewColumn:
    """A column of a view: the table column it copies ("table.column"), or its own metadata when computed."""

    name: str
    source: str | None
    description: str | None = None  # None: the source column's
    unit: str | None = None  # computed columns only
    ucd: str | None = None  # computed columns only


def _c(name: str, source: str, description: str | None = None) -> ViewColumn:
    return ViewColumn(name, source, description)


# Table D.1 of Shen & Luo (2024), then catalogdb's additions.
FINAL_CATALOG = (
    _c("obsid", "lamost_star.obsid"),
    _c("ra", "lamost_star.ra", "Right ascension (ICRS) from the LAMOST catalogue"),
    _c("dec", "lamost_star.dec", "Declination (ICRS) from the LAMOST catalogue"),
    _c("snrg", "lamost_star.snrg"),
    _c("snrr", "lamost_star.snrr"),
    _c("flag", "spectrum.flag"),
    _c("cnn_teff", "cnn_prediction.cnn_teff"),
    _c("cnn_logg", "cnn_prediction.cnn_logg"),
    _c("cnn_feh", "cnn_prediction.cnn_feh"),
    _c("cnn_mg", "cnn_prediction.cnn_mg"),
    _c("cnn_bprp", "cnn_prediction.cnn_bprp"),
    _c("cnn_distance", "cnn_prediction.cnn_distance", "Distance: mode of P(d) (Eq. 5)"),
    _c("lasp_teff", "lamost_star.teff"),
    _c("lasp_teff_err", "lamost_star.teff_err", "Uncertainty of lasp_teff"),
    _c("lasp_logg", "lamost_star.logg"),
    _c("lasp_logg_err", "lamost_star.logg_err", "Uncertainty of lasp_logg"),
    _c("lasp_feh", "lamost_star.feh"),
    _c("lasp_feh_err", "lamost_star.feh_err", "Uncertainty of lasp_feh"),
    _c("lasp_rv", "lamost_star.rv"),
    _c("lasp_rv_err", "lamost_star.rv_err", "Uncertainty of lasp_rv"),
    _c("gaia_source_id", "xmatch_lamost_gaia.source_id", "Gaia DR3 source_id of the best match within 3 arcsec"),
    _c("parallax", "gaia_source.parallax", "Gaia DR3 parallax"),
    _c("parallax_over_error", "gaia_source.parallax_over_error", "Gaia DR3 parallax over its error"),
    _c("parallax_zeropoint", "gaia_source.parallax_zeropoint", "Lindegren et al. (2021) parallax zero point"),
    ViewColumn("parallax_correction", None, "Parallax minus its zero point", "mas", "pos.parallax.trig"),
    _c("gaia_g_mean_mag", "gaia_source.phot_g_mean_mag", "Gaia G magnitude"),
    _c("gaia_bp_rp", "gaia_source.bp_rp", "Gaia BP - RP colour"),
    _c("r_med_geo", "gaia_distance.r_med_geo", "Bailer-Jones et al. (2021) median geometric distance"),
    _c("APOGEE_ID", "xmatch_lamost_apogee.apogee_id", "APOGEE DR17 APOGEE_ID of the best match within 1 arcsec"),
    _c("cnn_teff_err", "cnn_prediction.cnn_teff_err"),
    _c("cnn_logg_err", "cnn_prediction.cnn_logg_err"),
    _c("cnn_feh_err", "cnn_prediction.cnn_feh_err"),
    _c("cnn_mg_err", "cnn_prediction.cnn_mg_err"),
    _c("cnn_bprp_err", "cnn_prediction.cnn_bprp_err"),
    _c("a_g", "cnn_prediction.a_g"),
    _c("a_g_source", "cnn_prediction.a_g_source"),
    _c("distance_p16", "cnn_prediction.distance_p16"),
    _c("distance_p50", "cnn_prediction.distance_p50"),
    _c("distance_p84", "cnn_prediction.distance_p84"),
    _c("x", "cnn_prediction.x", "Galactocentric X (astropy default frame)"),
    _c("y", "cnn_prediction.y"),
    _c("z", "cnn_prediction.z"),
    _c("r", "cnn_prediction.r"),
    _c("model_id", "cnn_prediction.model_id"),
)
FINAL_CATALOG_DESCRIPTION = (
    "Table D.1 of Shen & Luo (2024): the CNN catalogue of the newest release (catalogdb publish), with the distance "
    "percentiles and galactocentric X, Y, Z, R added by catalogdb")
FINAL_CATALOG_KEYS = (
    ForeignKey("lamost_star", (("obsid", "obsid"),), "LAMOST catalogue row of the spectrum"),
    ForeignKey("gaia_source", (("gaia_source_id", "source_id"),), "Gaia DR3 best match"),
)


def resolved(columns: tuple[ViewColumn, ...]) -> list[tuple[str, str | None, str | None, str]]:
    """(name, unit, UCD, description) per column, inherited from the source columns where they copy one."""
    from catalogdb.db.schema import metadata

    out = []
    for c in columns:
        if c.source is None:
            out.append((c.name, c.unit, c.ucd, c.description or ""))
            continue
        table, column = c.source.split(".")
        src = metadata.tables[table].columns[column]
        out.append((c.name, src.info.get("unit"), src.info.get("ucd"), c.description or src.comment or ""))
    return out
