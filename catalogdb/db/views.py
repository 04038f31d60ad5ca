"""The final catalogue's columns with their unit, UCD and description, for TAP and the exports.

The view's SQL is frozen in the migrations (catalogdb/db/sql/views/final_catalog/v1.sql, then 0012);
the column list here names the same columns (expression, name) in the same order.
"""

from __future__ import annotations

# (column expression, name, unit, UCD, description) in the order of Table D.1, then catalogdb's additions.
FINAL_CATALOG_COLUMNS = [
    ("l.obsid", "obsid", None, "meta.id;meta.main", "LAMOST unique spectrum identifier"),
    ("l.ra", "ra", "deg", "pos.eq.ra;meta.main", "Right ascension (ICRS) from the LAMOST catalogue"),
    ("l.dec", "dec", "deg", "pos.eq.dec;meta.main", "Declination (ICRS) from the LAMOST catalogue"),
    ("l.snrg", "snrg", None, "stat.snr", "Signal-to-noise ratio in the g band"),
    ("l.snrr", "snrr", None, "stat.snr", "Signal-to-noise ratio in the r band"),
    ("s.flag", "flag", None, "meta.code.qual", "1 when pixels outside [0.1, 1.2] were set to 1.0 in preprocessing"),
    ("p.cnn_teff", "cnn_teff", "K", "phys.temperature.effective", "CNN effective temperature"),
    ("p.cnn_logg", "cnn_logg", "dex", "phys.gravity", "CNN surface gravity log g"),
    ("p.cnn_feh", "cnn_feh", "dex", "phys.abund.Fe", "CNN metallicity [Fe/H]"),
    ("p.cnn_mg", "cnn_mg", "mag", "phys.magAbs;em.opt", "CNN absolute magnitude M_G"),
    ("p.cnn_bprp", "cnn_bprp", "mag", "phot.color", "CNN intrinsic colour (BP-RP)_0"),
    ("p.cnn_distance", "cnn_distance", "pc", "pos.distance", "Distance: mode of P(d) (Eq. 5)"),
    ("l.teff", "lasp_teff", "K", "phys.temperature.effective", "LASP effective temperature"),
    ("l.teff_err", "lasp_teff_err", "K", "stat.error;phys.temperature.effective", "Uncertainty of lasp_teff"),
    ("l.logg", "lasp_logg", "dex", "phys.gravity", "LASP surface gravity"),
    ("l.logg_err", "lasp_logg_err", "dex", "stat.error;phys.gravity", "Uncertainty of lasp_logg"),
    ("l.feh", "lasp_feh", "dex", "phys.abund.Fe", "LASP metallicity"),
    ("l.feh_err", "lasp_feh_err", "dex", "stat.error;phys.abund.Fe", "Uncertainty of lasp_feh"),
    ("l.rv", "lasp_rv", "km/s", "spect.dopplerVeloc.opt", "LASP radial velocity"),
    ("l.rv_err", "lasp_rv_err", "km/s", "stat.error;spect.dopplerVeloc.opt", "Uncertainty of lasp_rv"),
    ("xg.source_id", "gaia_source_id", None, "meta.id.cross", "Gaia DR3 source_id of the best match within 3 arcsec"),
    ("g.parallax", "parallax", "mas", "pos.parallax.trig", "Gaia DR3 parallax"),
    ("g.parallax_over_error", "parallax_over_error", None, "arith.ratio", "Gaia DR3 parallax over its error"),
    ("g.parallax_zeropoint", "parallax_zeropoint", "mas", "pos.parallax;arith.zp", "Lindegren et al. (2021) parallax zero point"),
    ("g.parallax - g.parallax_zeropoint", "parallax_correction", "mas", "pos.parallax.trig", "Parallax minus its zero point"),
    ("g.phot_g_mean_mag", "gaia_g_mean_mag", "mag", "phot.mag;em.opt", "Gaia G magnitude"),
    ("g.bp_rp", "gaia_bp_rp", "mag", "phot.color", "Gaia BP - RP colour"),
    ("d.r_med_geo", "r_med_geo", "pc", "pos.distance", "Bailer-Jones et al. (2021) median geometric distance"),
    ("xa.apogee_id", '"APOGEE_ID"', None, "meta.id.cross", "APOGEE DR17 APOGEE_ID of the best match within 1 arcsec"),
    ("p.cnn_teff_err", "cnn_teff_err", "K", "stat.error;phys.temperature.effective", "Spread of the fold models' Teff"),
    ("p.cnn_logg_err", "cnn_logg_err", "dex", "stat.error;phys.gravity", "Spread of the fold models' log g"),
    ("p.cnn_feh_err", "cnn_feh_err", "dex", "stat.error;phys.abund.Fe", "Spread of the fold models' [Fe/H]"),
    ("p.cnn_mg_err", "cnn_mg_err", "mag", "stat.error;phys.magAbs", "Spread of the fold models' M_G"),
    ("p.cnn_bprp_err", "cnn_bprp_err", "mag", "stat.error;phot.color", "Spread of the fold models' (BP-RP)_0"),
    ("p.a_g", "a_g", "mag", "phys.absorption;em.opt", "G-band extinction used for the distance"),
    ("p.a_g_source", "a_g_source", None, "meta.note", "bp_rp: 1.8626 (bp_rp - cnn_bprp); ag_gspphot: GSP-Phot fallback"),
    ("p.distance_p16", "distance_p16", "pc", "pos.distance;stat.min", "16th percentile of P(d)"),
    ("p.distance_p50", "distance_p50", "pc", "pos.distance;stat.median", "Median of P(d)"),
    ("p.distance_p84", "distance_p84", "pc", "pos.distance;stat.max", "84th percentile of P(d)"),
    ("p.x", "x", "pc", "pos.cartesian.x", "Galactocentric X (astropy default frame)"),
    ("p.y", "y", "pc", "pos.cartesian.y", "Galactocentric Y"),
    ("p.z", "z", "pc", "pos.cartesian.z", "Galactocentric Z"),
    ("p.r", "r", "pc", "pos.distance", "Galactocentric cylindrical radius R"),
    ("p.model_id", "model_id", None, "meta.id", "CNN model that made the prediction"),
]
