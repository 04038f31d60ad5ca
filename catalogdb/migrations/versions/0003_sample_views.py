"""Sample selections as views: solar_like, training_cutflow, training_set, targets, target_venn.

Each view cites the part of Shen & Luo (2024) it reproduces. The parallax zero point is stored on
gaia_source (computed by `catalogdb xmatch` with the gaiadr3-zeropoint package).

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VIEWS = [
    ("solar_like", """
SELECT * FROM lamost_star
WHERE teff BETWEEN 4800 AND 6800
  AND feh BETWEEN -1.0 AND 1.0
  AND logg >= 5.98 - 0.00035 * teff
""", "Table 1 of Shen & Luo (2024): solar-like stars by LASP parameters (4800 <= Teff <= 6800 K, "
     "-1 <= [Fe/H] <= 1, log g >= 5.98 - 0.00035 Teff, the dwarf/giant line of Zhang et al. 2022)"),

    ("gaia_label", """
SELECT g.source_id, g.parallax, g.parallax_over_error, g.parallax_zeropoint, g.zpt_valid,
       g.parallax - g.parallax_zeropoint AS parallax_correction,
       g.phot_g_mean_mag, g.bp_rp, g.ag_gspphot, g.ebpminrp_gspphot, g.distance_gspphot, d.r_med_geo,
       g.phot_g_mean_mag - 5 * log(d.r_med_geo) + 5 - g.ag_gspphot AS mg,
       g.bp_rp - g.ebpminrp_gspphot AS bprp0
FROM gaia_source g LEFT JOIN gaia_distance d USING (source_id)
""", "Gaia DR3 rows with Bailer-Jones r_med_geo and the labels of Shen & Luo (2024): "
     "M_G = G - 5 log10(r_med_geo) + 5 - A_G (Eq. 1), (BP-RP)_0 = bp_rp - E(BP-RP), and "
     "parallax_correction = parallax - Lindegren et al. (2021) zero point"),

    ("training_candidate", """
SELECT s.obsid, s.snrg, s.fibermask,
       a.apogee_id, a.teff, a.logg, a.fe_h,
       a.teff BETWEEN 4800 AND 6800 AND a.fe_h BETWEEN -1.0 AND 1.0
           AND a.logg >= 5.98 - 0.00035 * a.teff AS aspcap_solar_like,
       xg.source_id, g.parallax_over_error, g.mg, g.bprp0,
       EXISTS (SELECT 1 FROM spectrum sp WHERE sp.obsid = s.obsid) AS has_spectrum
FROM solar_like s
JOIN xmatch_lamost_apogee xa ON xa.obsid = s.obsid AND xa.best
JOIN apogee_star a USING (apogee_id, telescope, field)
LEFT JOIN xmatch_lamost_gaia xg ON xg.obsid = s.obsid AND xg.best
LEFT JOIN gaia_label g ON g.source_id = xg.source_id
""", "Solar-like LAMOST spectra with an APOGEE DR17 match within the crossmatch radius (Table 2, "
     "rows 3 onwards of Shen & Luo 2024), with their Gaia match and labels"),

    ("training_set", """
WITH labelled AS (
  SELECT obsid, teff, logg, fe_h AS feh, mg, bprp0, snrg,
         ('x' || substr(md5(obsid::text), 1, 8))::bit(32)::bigint AS h
  FROM training_candidate
  WHERE aspcap_solar_like AND parallax_over_error > 5 AND snrg > 10 AND fibermask = 0
    AND mg IS NOT NULL AND bprp0 IS NOT NULL AND teff IS NOT NULL AND logg IS NOT NULL
    AND fe_h IS NOT NULL AND has_spectrum
)
SELECT obsid, teff, logg, feh, mg, bprp0, snrg,
       CASE WHEN h % 5 = 0 THEN 'test' ELSE 'reference' END AS split,
       CASE WHEN h % 5 = 0 THEN NULL ELSE ((h / 5) % 5)::int END AS fold
FROM labelled
""", "The training set of Shen & Luo (2024) (Table 2, last row): ASPCAP Teff, log g, [Fe/H], M_G (Eq. 1) and "
     "(BP-RP)_0 labels; split 8:2 into reference and test and five folds on the reference set, by an md5 "
     "hash of obsid so the split is stable under re-runs"),

    ("training_cutflow", """
SELECT * FROM (VALUES
  (1, 'LAMOST DR9 LRS stellar catalogue', (SELECT count(*) FROM lamost_star)),
  (2, 'solar-like by LASP (Table 1)', (SELECT count(*) FROM solar_like)),
  (3, 'APOGEE DR17 within the radius (1 arcsec)', (SELECT count(*) FROM training_candidate)),
  (4, 'solar-like by ASPCAP', (SELECT count(*) FROM training_candidate WHERE aspcap_solar_like)),
  (5, 'Gaia DR3 within the radius (3 arcsec)',
      (SELECT count(*) FROM training_candidate WHERE aspcap_solar_like AND source_id IS NOT NULL)),
  (6, 'parallax_over_error > 5',
      (SELECT count(*) FROM training_candidate WHERE aspcap_solar_like AND parallax_over_error > 5)),
  (7, 'S/N_g > 10 and fibermask = 0',
      (SELECT count(*) FROM training_candidate
       WHERE aspcap_solar_like AND parallax_over_error > 5 AND snrg > 10 AND fibermask = 0)),
  (8, 'catalogdb: all five labels exist (r_med_geo, GSP-Phot A_G and E(BP-RP))',
      (SELECT count(*) FROM training_candidate
       WHERE aspcap_solar_like AND parallax_over_error > 5 AND snrg > 10 AND fibermask = 0
         AND mg IS NOT NULL AND bprp0 IS NOT NULL AND teff IS NOT NULL AND logg IS NOT NULL
         AND fe_h IS NOT NULL)),
  (9, 'catalogdb: a preprocessed spectrum is stored',
      (SELECT count(*) FROM training_set))
) AS t(stage, description, count)
""", "Table 2 of Shen & Luo (2024): the training-set cut-flow (paper: 7,060,679; 4,067,525; 54,971; "
     "47,557; 44,593; 39,416; 18,573), then the cuts catalogdb adds so that every label and spectrum exists"),

    ("targets", """
SELECT s.obsid, s.ra, s.dec, s.snrg, xg.source_id,
       g.parallax IS NULL AS no_parallax,
       coalesce(g.parallax_over_error <= 5, false) AS low_parallax_over_error,
       g.distance_gspphot IS NULL AS no_gspphot_distance
FROM solar_like s
LEFT JOIN xmatch_lamost_gaia xg ON xg.obsid = s.obsid AND xg.best
LEFT JOIN gaia_source g ON g.source_id = xg.source_id
WHERE s.snrg >= 10
  AND (g.parallax IS NULL OR g.parallax_over_error <= 5 OR g.distance_gspphot IS NULL)
""", "Sect. 4.1 of Shen & Luo (2024): solar-like spectra with S/N_g >= 10 whose distance is problematic "
     "(no Gaia parallax, parallax_over_error <= 5, or no GSP-Phot distance); paper: 521,455 spectra"),

    ("target_venn", """
SELECT no_parallax, low_parallax_over_error, no_gspphot_distance, count(*) AS count
FROM targets
GROUP BY no_parallax, low_parallax_over_error, no_gspphot_distance
ORDER BY no_parallax DESC, low_parallax_over_error DESC, no_gspphot_distance DESC
""", "Fig. 8 of Shen & Luo (2024): the Venn regions of the targets by reason (paper: 54,941 without "
     "parallax, 265,276 with parallax_over_error <= 5, 323,451 without a GSP-Phot distance, 9,449 with a "
     "GSP-Phot distance but no parallax)"),
]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.add_column("gaia_source", sa.Column(
        "parallax_zeropoint", sa.REAL(),
        comment="Lindegren et al. (2021) parallax zero point; NULL outside its validity range"))
    op.add_column("gaia_source", sa.Column(
        "zpt_valid", sa.Boolean(),
        comment="True when the zero point is within 6 < G < 21 and its colour range; NULL before computed"))
    for name, sql, comment in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {sql}")
        op.execute(f"COMMENT ON VIEW {name} IS {_literal(comment)}")


def downgrade() -> None:
    for name, _, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    op.drop_column("gaia_source", "zpt_valid")
    op.drop_column("gaia_source", "parallax_zeropoint")
