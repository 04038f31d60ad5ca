"""The comparison catalogues of Sects. 4.2-4.3 of Shen & Luo (2024), declared on the one schema `metadata`.

Distances: the APOGEE DR17 value-added catalogues StarHorse (Queiroz et al. 2018, 2020), DistMass
(Stone-Martinez et al. 2024) and astroNN (Leung & Bovy 2019b); stellar parameters: GALAH DR3 (Buder et
al. 2021). DistMass and astroNN are keyed like allStar (APOGEE_ID, TELESCOPE, FIELD), StarHorse by APOGEE_ID
alone (migration 0011); GALAH DR3 by sobject_id and joined to the final catalogue by its Gaia DR3 source_id
(dr3_source_id). Migration 0007 creates the tables and the comparison views. Importing this module registers
the tables on `metadata`.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalogdb.db.schema import F4, F8, col, metadata, q3c_index


def _apogee_key() -> list[sa.Column]:
    return [
        col("apogee_id", sa.Text, None, "meta.id;meta.main", "APOGEE object name (APOGEE_ID)", primary_key=True),
        col("telescope", sa.Text, None, "instr.tel", "APOGEE telescope (apo25m, lco25m, apo1m)", primary_key=True),
        col("field", sa.Text, None, "meta.id", "APOGEE field name", primary_key=True),
    ]


apogee_starhorse = sa.Table(
    "apogee_starhorse",
    metadata,
    # StarHorse DR17 has one row per star (APOGEE_ID) and no TELESCOPE or FIELD column (migration 0011)
    col("apogee_id", sa.Text, None, "meta.id;meta.main", "APOGEE object name (APOGEE_ID)", primary_key=True),
    col("telescope", sa.Text, None, "instr.tel", "APOGEE telescope; NULL for StarHorse DR17, which has none"),
    col("field", sa.Text, None, "meta.id", "APOGEE field name; NULL for StarHorse DR17, which has none"),
    col("dist16_pc", F4, "pc", "pos.distance;stat.min",
        "StarHorse 16th percentile of the distance posterior (file column dist16, kpc)"),
    col("dist50_pc", F4, "pc", "pos.distance;stat.median", "StarHorse median distance (file column dist50, kpc)"),
    col("dist84_pc", F4, "pc", "pos.distance;stat.max",
        "StarHorse 84th percentile of the distance posterior (file column dist84, kpc)"),
    comment="APOGEE DR17 StarHorse value-added catalogue (Queiroz et al. 2018, 2020, 2023): Bayesian isochrone "
            "distances, one row per APOGEE_ID",
)

apogee_distmass = sa.Table(
    "apogee_distmass",
    metadata,
    *_apogee_key(),
    col("weighted_dist", F4, "pc", "pos.distance", "DistMass distance (WEIGHTED_DIST)"),
    col("weighted_dist_err", F4, "pc", "stat.error;pos.distance", "Uncertainty of WEIGHTED_DIST"),
    col("mass", F4, "solMass", "phys.mass", "DistMass stellar mass"),
    comment="APOGEE DR17 DistMass value-added catalogue (Stone-Martinez et al. 2024): neural-network "
            "distances and masses",
)

apogee_astronn = sa.Table(
    "apogee_astronn",
    metadata,
    *_apogee_key(),
    col("weighted_dist", F4, "pc", "pos.distance",
        "astroNN distance: inverse-variance weighted combination of the NN and Gaia parallaxes"),
    col("weighted_dist_error", F4, "pc", "stat.error;pos.distance", "Uncertainty of weighted_dist"),
    comment="APOGEE DR17 astroNN value-added catalogue (Leung & Bovy 2019a,b): neural-network distances",
)

galah_star = sa.Table(
    "galah_star",
    metadata,
    col("sobject_id", sa.BigInteger, None, "meta.id;meta.main", "GALAH spectrum identifier", primary_key=True),
    col("star_id", sa.Text, None, "meta.id", "2MASS identifier of the star"),
    col("dr3_source_id", sa.BigInteger, None, "meta.id.cross", "Gaia DR3 (EDR3) source_id given by GALAH"),
    col("ra", F8, "deg", "pos.eq.ra;meta.main", "Right ascension (ICRS) from Gaia DR2 (ra_dr2)"),
    col("dec", F8, "deg", "pos.eq.dec;meta.main", "Declination (ICRS) from Gaia DR2 (dec_dr2)"),
    col("snr_c3_iraf", F4, None, "stat.snr", "S/N per pixel in the third (red) HERMES arm"),
    col("flag_repeat", sa.Integer, None, "meta.code", "0 for the best (highest S/N) spectrum of a star"),
    col("teff", F4, "K", "phys.temperature.effective", "GALAH effective temperature"),
    col("e_teff", F4, "K", "stat.error;phys.temperature.effective", "Uncertainty of teff"),
    col("logg", F4, "dex", "phys.gravity", "GALAH surface gravity log g (cgs)"),
    col("e_logg", F4, "dex", "stat.error;phys.gravity", "Uncertainty of logg"),
    col("fe_h", F4, "dex", "phys.abund.Fe", "GALAH [Fe/H]"),
    col("e_fe_h", F4, "dex", "stat.error;phys.abund.Fe", "Uncertainty of fe_h"),
    col("flag_sp", sa.Integer, None, "meta.code.qual", "Stellar-parameter quality bits (0 = good)"),
    col("flag_fe_h", sa.Integer, None, "meta.code.qual", "[Fe/H] quality flag (0 = good)"),
    col("red_flag", sa.Integer, None, "meta.code.qual", "Reduction pipeline bits (0 = good)"),
    q3c_index("galah_star"),
    comment="GALAH DR3 main allstar catalogue (Buder et al. 2021), one row per spectrum (sobject_id)",
)

COMPARISON_TABLES = (apogee_starhorse, apogee_distmass, apogee_astronn, galah_star)

__all__ = ["COMPARISON_TABLES", "apogee_astronn", "apogee_distmass", "apogee_starhorse", "galah_star"]
