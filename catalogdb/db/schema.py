"""The survey schema, declared once: every column with its unit, UCD and description.

Column names are the surveys' own (lower case, as PostgreSQL folds them). TAP metadata, file
exports and the Alembic migrations all read this module.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

F8 = sa.Double
F4 = sa.REAL


def col(name: str, type_, unit: str | None, ucd: str | None, description: str, **kw) -> sa.Column:
    """A column carrying its unit and UCD in `info` and its description as the SQL comment."""
    return sa.Column(name, type_, comment=description, info={"unit": unit, "ucd": ucd}, **kw)


def q3c_index(table: str) -> sa.Index:
    """The spatial index every (ra, dec) table gets: a B-tree on q3c_ang2ipix(ra, dec)."""
    return sa.Index(f"{table}_q3c_idx", sa.text("q3c_ang2ipix(ra, dec)"))


def ra_dec(what: str) -> list[sa.Column]:
    """ICRS right ascension and declination columns."""
    return [
        col("ra", F8, "deg", "pos.eq.ra;meta.main", f"Right ascension (ICRS) of the {what}", nullable=False),
        col("dec", F8, "deg", "pos.eq.dec;meta.main", f"Declination (ICRS) of the {what}", nullable=False),
    ]


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

lamost_star = sa.Table(
    "lamost_star",
    metadata,
    col("obsid", sa.BigInteger, None, "meta.id;meta.main", "LAMOST unique spectrum identifier", primary_key=True),
    col("uid", sa.Text, None, "meta.id", "LAMOST unique star identifier (repeat observations share it)"),
    col("designation", sa.Text, None, "meta.id", "Target designation Jhhmmss.ss+ddmmss.s"),
    col("obsdate", sa.Date, None, "time.epoch", "Date of observation"),
    col("lmjd", sa.Integer, "d", "time.epoch", "Local modified Julian day"),
    col("planid", sa.Text, None, "meta.id", "Plan name"),
    col("spid", sa.SmallInteger, None, "meta.id", "Spectrograph identifier"),
    col("fiberid", sa.SmallInteger, None, "meta.id", "Fiber identifier"),
    *ra_dec("input target"),
    col("ra_obs", F8, "deg", "pos.eq.ra", "Right ascension of the fiber pointing"),
    col("dec_obs", F8, "deg", "pos.eq.dec", "Declination of the fiber pointing"),
    *[col(f"snr{b}", F4, None, "stat.snr", f"Signal-to-noise ratio in the {b} band") for b in "ugriz"],
    col("class", sa.Text, None, "src.class", "Spectral class from the LAMOST pipeline"),
    col("subclass", sa.Text, None, "src.spType", "Spectral subclass from the LAMOST pipeline"),
    col("z", F8, None, "src.redshift", "Redshift from the LAMOST pipeline"),
    col("z_err", F8, None, "stat.error;src.redshift", "Uncertainty of z"),
    col("fibermask", sa.Integer, None, "meta.code.qual", "Fiber mask bits (0 = good)"),
    col("teff", F4, "K", "phys.temperature.effective", "LASP effective temperature"),
    col("teff_err", F4, "K", "stat.error;phys.temperature.effective", "Uncertainty of teff"),
    col("logg", F4, "dex", "phys.gravity", "LASP surface gravity log g (cgs)"),
    col("logg_err", F4, "dex", "stat.error;phys.gravity", "Uncertainty of logg"),
    col("feh", F4, "dex", "phys.abund.Fe", "LASP metallicity [Fe/H]"),
    col("feh_err", F4, "dex", "stat.error;phys.abund.Fe", "Uncertainty of feh"),
    col("rv", F4, "km/s", "spect.dopplerVeloc.opt", "LASP heliocentric radial velocity"),
    col("rv_err", F4, "km/s", "stat.error;spect.dopplerVeloc.opt", "Uncertainty of rv"),
    col("alpha_m", F4, "dex", "phys.abund", "LASP [alpha/M]"),
    col("alpha_m_err", F4, "dex", "stat.error;phys.abund", "Uncertainty of alpha_m"),
    col("gaia_source_id", sa.BigInteger, None, "meta.id.cross", "Gaia DR3 source_id given by LAMOST"),
    col("gaia_g_mean_mag", F4, "mag", "phot.mag;em.opt", "Gaia G magnitude given by LAMOST"),
    q3c_index("lamost_star"),
    comment="LAMOST DR9 LRS stellar (AFGK) catalogue, one row per spectrum (obsid)",
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

gaia_source = sa.Table(
    "gaia_source",
    metadata,
    col("source_id", sa.BigInteger, None, "meta.id;meta.main", "Gaia DR3 unique source identifier",
        primary_key=True),
    *ra_dec("source at epoch J2016.0"),
    col("parallax", F8, "mas", "pos.parallax.trig", "Parallax"),
    col("parallax_error", F4, "mas", "stat.error;pos.parallax.trig", "Standard error of parallax"),
    col("parallax_over_error", F4, None, "arith.ratio", "Parallax divided by its standard error"),
    col("pmra", F8, "mas/yr", "pos.pm;pos.eq.ra", "Proper motion in right ascension direction"),
    col("pmdec", F8, "mas/yr", "pos.pm;pos.eq.dec", "Proper motion in declination direction"),
    col("ruwe", F4, None, "stat.error", "Renormalised unit weight error"),
    col("phot_g_mean_mag", F4, "mag", "phot.mag;em.opt", "G-band mean magnitude"),
    col("phot_bp_mean_mag", F4, "mag", "phot.mag;em.opt.B", "Integrated BP mean magnitude"),
    col("phot_rp_mean_mag", F4, "mag", "phot.mag;em.opt.R", "Integrated RP mean magnitude"),
    col("bp_rp", F4, "mag", "phot.color", "BP - RP colour"),
    col("nu_eff_used_in_astrometry", F4, "1/um", "em.wavenumber",
        "Effective wavenumber of the source used in the astrometric solution"),
    col("pseudocolour", F4, "1/um", "em.wavenumber", "Astrometrically estimated pseudocolour of the source"),
    col("ecl_lat", F8, "deg", "pos.ecliptic.lat", "Ecliptic latitude"),
    col("astrometric_params_solved", sa.SmallInteger, None, "meta.number",
        "Which parameters have been solved for (31 = 5-p, 95 = 6-p)"),
    col("ag_gspphot", F4, "mag", "phys.absorption;em.opt", "Extinction in G band from GSP-Phot"),
    col("ebpminrp_gspphot", F4, "mag", "phot.color.excess", "Reddening E(BP-RP) from GSP-Phot"),
    col("distance_gspphot", F4, "pc", "pos.distance", "Distance from GSP-Phot"),
    col("teff_gspphot", F4, "K", "phys.temperature.effective", "Effective temperature from GSP-Phot"),
    col("logg_gspphot", F4, "dex", "phys.gravity", "Surface gravity from GSP-Phot"),
    col("mh_gspphot", F4, "dex", "phys.abund.Z", "Iron abundance from GSP-Phot"),
    col("parallax_zeropoint", F4, "mas", "pos.parallax;arith.zp",
        "Lindegren et al. (2021) parallax zero point from gaiadr3-zeropoint (zpt.get_zpt), its value also outside "
        "the calibrated range (see zpt_clamped); NULL where the package gives none (2-parameter solution, a "
        "missing input) or before computed"),
    col("zpt_valid", sa.Boolean, None, "meta.code.qual",
        "True when the zero point is computed inside the calibrated range (6 < G < 21; 1.1 < nu_eff < 1.9 for "
        "5-p, 1.24 < pseudocolour < 1.72 for 6-p solutions), false otherwise; NULL before computed"),
    col("zpt_clamped", sa.Boolean, None, "meta.code.qual",
        "True when an input lay outside the calibrated range and the zero point is the package's value there "
        "(held at G = 6 or 21 and at the pseudocolour limits, continued linearly in nu_eff); false inside; NULL "
        "where the package gives no value or before computed"),
    q3c_index("gaia_source"),
    comment="Gaia DR3 gaia_source rows",
)

gaia_distance = sa.Table(
    "gaia_distance",
    metadata,
    col("source_id", sa.BigInteger, None, "meta.id;meta.main", "Gaia source identifier", primary_key=True),
    col("r_med_geo", F4, "pc", "pos.distance", "Median of the geometric distance posterior"),
    col("r_lo_geo", F4, "pc", "pos.distance;stat.min", "16th percentile of the geometric distance posterior"),
    col("r_hi_geo", F4, "pc", "pos.distance;stat.max", "84th percentile of the geometric distance posterior"),
    col("r_med_photogeo", F4, "pc", "pos.distance", "Median of the photogeometric distance posterior"),
    col("r_lo_photogeo", F4, "pc", "pos.distance;stat.min", "16th percentile of the photogeometric posterior"),
    col("r_hi_photogeo", F4, "pc", "pos.distance;stat.max", "84th percentile of the photogeometric posterior"),
    col("flag", sa.Text, None, "meta.code", "Bailer-Jones flag"),
    comment="Bailer-Jones et al. (2021) EDR3 distances",
)

apogee_star = sa.Table(
    "apogee_star",
    metadata,
    col("apogee_id", sa.Text, None, "meta.id;meta.main", "APOGEE object name (APOGEE_ID)", primary_key=True),
    col("telescope", sa.Text, None, "instr.tel", "Telescope (apo25m, lco25m, apo1m)", primary_key=True),
    col("field", sa.Text, None, "meta.id", "Field name", primary_key=True),
    *ra_dec("star"),
    col("snr", F4, None, "stat.snr", "Median S/N per pixel of the combined spectrum"),
    col("teff", F4, "K", "phys.temperature.effective", "ASPCAP effective temperature"),
    col("teff_err", F4, "K", "stat.error;phys.temperature.effective", "Uncertainty of TEFF"),
    col("logg", F4, "dex", "phys.gravity", "ASPCAP surface gravity"),
    col("logg_err", F4, "dex", "stat.error;phys.gravity", "Uncertainty of LOGG"),
    col("fe_h", F4, "dex", "phys.abund.Fe", "ASPCAP [Fe/H]"),
    col("fe_h_err", F4, "dex", "stat.error;phys.abund.Fe", "Uncertainty of FE_H"),
    col("m_h", F4, "dex", "phys.abund.Z", "ASPCAP [M/H]"),
    col("m_h_err", F4, "dex", "stat.error;phys.abund.Z", "Uncertainty of M_H"),
    col("starflag", sa.BigInteger, None, "meta.code.qual", "STARFLAG bits"),
    col("aspcapflag", sa.BigInteger, None, "meta.code.qual", "ASPCAPFLAG bits"),
    col("extratarg", sa.Integer, None, "meta.code",
        "EXTRATARG bits (0 = main survey; bit 4 = 16: duplicate, not the highest-S/N entry of this APOGEE_ID)"),
    col("gaiaedr3_source_id", sa.BigInteger, None, "meta.id.cross", "Gaia EDR3 source_id given by APOGEE"),
    q3c_index("apogee_star"),
    comment="APOGEE DR17 allStar rows",
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
    col("cnn_teff_err", F4, "K", "stat.error", "Spread of the fold models' Teff"),
    col("cnn_logg", F4, "dex", "phys.gravity", "CNN log g"),
    col("cnn_logg_err", F4, "dex", "stat.error", "Spread of the fold models' log g"),
    col("cnn_feh", F4, "dex", "phys.abund.Fe", "CNN [Fe/H]"),
    col("cnn_feh_err", F4, "dex", "stat.error", "Spread of the fold models' [Fe/H]"),
    col("cnn_mg", F4, "mag", "phys.magAbs;em.opt", "CNN absolute G magnitude M_G"),
    col("cnn_mg_err", F4, "mag", "stat.error", "Spread of the fold models' M_G"),
    col("cnn_bprp", F4, "mag", "phot.color;phys.absorption", "CNN intrinsic colour (BP-RP)_0"),
    col("cnn_bprp_err", F4, "mag", "stat.error", "Spread of the fold models' (BP-RP)_0"),
    col("a_g", F4, "mag", "phys.absorption;em.opt", "G-band extinction used for the distance"),
    col("a_g_source", sa.Text, None, "meta.note", "bp_rp (1.8626 (bp_rp - cnn_bprp)) or ag_gspphot"),
    col("cnn_distance", F4, "pc", "pos.distance", "Mode of the distance PDF (Eq. 5)"),
    col("distance_p16", F4, "pc", "pos.distance;stat.min", "16th percentile of the distance PDF"),
    col("distance_p50", F4, "pc", "pos.distance", "Median of the distance PDF"),
    col("distance_p84", F4, "pc", "pos.distance;stat.max", "84th percentile of the distance PDF"),
    col("x", F4, "pc", "pos.cartesian.x", "Galactocentric X"),
    col("y", F4, "pc", "pos.cartesian.y", "Galactocentric Y"),
    col("z", F4, "pc", "pos.cartesian.z", "Galactocentric Z"),
    col("r", F4, "pc", "pos.distance", "Galactocentric cylindrical radius R"),
    col("run_id", sa.BigInteger, None, "meta.id", "Prediction run", nullable=False),
    comment="CNN predictions per spectrum and model, with distances and galactocentric coordinates",
)

SURVEY_TABLES = ("lamost_star", "gaia_source", "gaia_distance", "apogee_star")
