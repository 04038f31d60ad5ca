"""Each cut and each gradient bin declared once, in the database.

- is_solar_like(teff, logg, feh): Table 1's cut as one SQL function, read by solar_like (LASP parameters)
  and training_candidate (ASPCAP parameters); before, the inequality was written out in both views.
- training_stage: every training candidate with the last cut-flow stage it passes (3..9). training_set is
  its stage-9 rows and training_cutflow counts it; before, the cut-flow restated training_set's WHERE clause
  term by term. The counts and the rows are unchanged.
- gradient_binning: the binning of Tables 3 and 4 as rows, read by gradient_table(name, source), which the
  views gradient_radial and gradient_vertical and catalogdb's Python call; before, the bins were written in
  the views and again in gradients.py.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

LAMOST_COLUMNS = """obsid, uid, designation, obsdate, lmjd, planid, spid, fiberid, ra, dec, ra_obs, dec_obs,
    snru, snrg, snrr, snri, snrz, class, subclass, z, z_err, fibermask, teff, teff_err, logg, logg_err, feh,
    feh_err, rv, rv_err, alpha_m, alpha_m_err, gaia_source_id, gaia_g_mean_mag"""

# float8 arguments: the views compared the REAL columns in double precision, so the rows are the same.
IS_SOLAR_LIKE = """
CREATE FUNCTION is_solar_like(teff float8, logg float8, feh float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT teff BETWEEN 4800 AND 6800 AND feh BETWEEN -1.0 AND 1.0 AND logg >= 5.98 - 0.00035 * teff
$$"""
IS_SOLAR_LIKE_COMMENT = (
    "Table 1 of Shen & Luo (2024): solar-like by Teff (K), log g and [Fe/H] (dex): 4800 <= Teff <= 6800, "
    "-1 <= [Fe/H] <= 1, log g >= 5.98 - 0.00035 Teff (the dwarf/giant line of Zhang et al. 2022)")

CANDIDATE = """
SELECT s.obsid, s.snrg, s.fibermask,
       a.apogee_id, a.teff, a.logg, a.fe_h,
       {solar_like} AS aspcap_solar_like,
       xg.source_id, g.parallax_over_error, g.mg, g.bprp0,
       EXISTS (SELECT 1 FROM spectrum sp WHERE sp.obsid = s.obsid) AS has_spectrum
FROM solar_like s
JOIN xmatch_lamost_apogee xa ON xa.obsid = s.obsid AND xa.best
JOIN apogee_star a USING (apogee_id, telescope, field)
LEFT JOIN xmatch_lamost_gaia xg ON xg.obsid = s.obsid AND xg.best
LEFT JOIN gaia_label g ON g.source_id = xg.source_id"""
OLD_SOLAR_LIKE = "{p}teff BETWEEN 4800 AND 6800 AND {p}{feh} BETWEEN -1.0 AND 1.0 AND {p}logg >= 5.98 - 0.00035 * {p}teff"

# The stage numbers are training_cutflow's: 3 = an APOGEE match, ..., 9 = every cut passed (training_set).
TRAINING_STAGE = """
CREATE VIEW training_stage AS
SELECT c.*,
       CASE WHEN NOT coalesce(aspcap_solar_like, false) THEN 3
            WHEN source_id IS NULL THEN 4
            WHEN NOT coalesce(parallax_over_error > 5, false) THEN 5
            WHEN NOT coalesce(snrg > 10 AND fibermask = 0, false) THEN 6
            WHEN mg IS NULL OR bprp0 IS NULL OR teff IS NULL OR logg IS NULL OR fe_h IS NULL THEN 7
            WHEN NOT has_spectrum THEN 8
            ELSE 9 END AS stage
FROM training_candidate c"""
TRAINING_STAGE_COMMENT = (
    "Training candidates with the last stage of training_cutflow each passes (3: APOGEE match, 4: solar-like by "
    "ASPCAP, 5: Gaia match, 6: parallax_over_error > 5, 7: S/N_g > 10 and fibermask = 0, 8: all five labels, "
    "9: a stored spectrum, i.e. training_set); the one place the training cuts are written")

SPLIT = """
SELECT obsid, teff, logg, feh, mg, bprp0, snrg,
       CASE WHEN h % 5 = 0 THEN 'test' ELSE 'reference' END AS split,
       CASE WHEN h % 5 = 0 THEN NULL ELSE ((h / 5) % 5)::int END AS fold
FROM labelled"""
TRAINING_SET = """
WITH labelled AS (
  SELECT obsid, teff, logg, fe_h AS feh, mg, bprp0, snrg,
         ('x' || substr(md5(coalesce((SELECT l.uid FROM lamost_star l WHERE l.obsid = c.obsid), obsid::text)),
                        1, 8))::bit(32)::bigint AS h
  FROM {source} c
  WHERE {where}
)""" + SPLIT
OLD_TRAINING_CUTS = """aspcap_solar_like AND parallax_over_error > 5 AND snrg > 10 AND fibermask = 0
    AND mg IS NOT NULL AND bprp0 IS NOT NULL AND teff IS NOT NULL AND logg IS NOT NULL
    AND fe_h IS NOT NULL AND has_spectrum"""

STAGES = """
  (1, 'LAMOST DR9 LRS stellar catalogue'),
  (2, 'solar-like by LASP (Table 1)'),
  (3, 'APOGEE DR17 within the radius (1 arcsec)'),
  (4, 'solar-like by ASPCAP'),
  (5, 'Gaia DR3 within the radius (3 arcsec)'),
  (6, 'parallax_over_error > 5'),
  (7, 'S/N_g > 10 and fibermask = 0'),
  (8, 'catalogdb: all five labels exist (r_med_geo, GSP-Phot A_G and E(BP-RP))'),
  (9, 'catalogdb: a preprocessed spectrum is stored')"""
TRAINING_CUTFLOW = f"""
WITH reached AS (SELECT stage, count(*) AS n FROM training_stage GROUP BY stage)
SELECT k.stage, k.description,
       CASE k.stage WHEN 1 THEN (SELECT count(*) FROM lamost_star)
                    WHEN 2 THEN (SELECT count(*) FROM solar_like)
                    ELSE (SELECT coalesce(sum(r.n), 0)::bigint FROM reached r WHERE r.stage >= k.stage) END AS count
FROM (VALUES {STAGES}) AS k(stage, description)
ORDER BY k.stage"""
OLD_TRAINING_CUTFLOW = """
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
) AS t(stage, description, count)"""

GRADIENT_BINNING = """
CREATE TABLE gradient_binning (
    name text PRIMARY KEY,
    x text NOT NULL,
    bin_by text NOT NULL,
    bin_start float8 NOT NULL,
    bin_stop float8 NOT NULL,
    bin_width float8 NOT NULL,
    x_min float8 NOT NULL,
    x_max float8 NOT NULL,
    description text NOT NULL
)"""
BINNINGS = """
INSERT INTO gradient_binning VALUES
  ('radial', 'r_kpc', 'abs_z_kpc', 0, 2, 0.2, 7, 14,
   'Table 3 of Shen & Luo (2024): radial [Fe/H] gradient in |Z| bins of 0.2 kpc from 0 to 2 kpc, 7 <= R <= 14 kpc'),
  ('vertical', 'abs_z_kpc', 'r_kpc', 7, 14, 1, 0, 2,
   'Table 4 of Shen & Luo (2024): vertical [Fe/H] gradient in R bins of 1 kpc from 7 to 14 kpc, |Z| <= 2 kpc')"""
GRADIENT_TABLE = """
CREATE FUNCTION gradient_table(binning text, source regclass DEFAULT 'gradient_sample')
RETURNS TABLE (bin_center float8, slope float8, slope_err float8, intercept float8, intercept_err float8,
               n bigint)
LANGUAGE sql STABLE AS $$
    SELECT g.* FROM gradient_binning b,
           metallicity_gradient(b.x, b.bin_by, b.bin_start, b.bin_stop, b.bin_width, b.x_min, b.x_max, source) g
    WHERE b.name = binning
$$"""
GRADIENT_VIEW = "SELECT bin_center AS {axis}, slope, slope_err, intercept, intercept_err, n FROM {call}"
OLD_GRADIENT_CALLS = {"radial": "metallicity_gradient('r_kpc', 'abs_z_kpc', 0, 2, 0.2, 7, 14)",
                      "vertical": "metallicity_gradient('abs_z_kpc', 'r_kpc', 7, 14, 1, 0, 2)"}
AXES = {"radial": "abs_z", "vertical": "r"}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute(IS_SOLAR_LIKE)
    op.execute(f"COMMENT ON FUNCTION is_solar_like(float8, float8, float8) IS {_literal(IS_SOLAR_LIKE_COMMENT)}")
    op.execute(f"CREATE OR REPLACE VIEW solar_like AS SELECT {LAMOST_COLUMNS} FROM lamost_star "
               "WHERE is_solar_like(teff, logg, feh)")
    op.execute("CREATE OR REPLACE VIEW training_candidate AS "
               + CANDIDATE.format(solar_like="is_solar_like(a.teff, a.logg, a.fe_h)"))
    op.execute(TRAINING_STAGE)
    op.execute(f"COMMENT ON VIEW training_stage IS {_literal(TRAINING_STAGE_COMMENT)}")
    op.execute("CREATE OR REPLACE VIEW training_set AS " + TRAINING_SET.format(source="training_stage",
                                                                                where="stage = 9"))
    op.execute("CREATE OR REPLACE VIEW training_cutflow AS " + TRAINING_CUTFLOW)
    op.execute(GRADIENT_BINNING)
    op.execute("COMMENT ON TABLE gradient_binning IS 'The bins of the gradient tables: [Fe/H] against x in bins "
               "of bin_by (kpc) from bin_start to bin_stop, rows with x_min <= x <= x_max'")
    op.execute(BINNINGS)
    op.execute(GRADIENT_TABLE)
    op.execute("COMMENT ON FUNCTION gradient_table(text, regclass) IS 'metallicity_gradient() with the binning "
               "named in gradient_binning (radial: Table 3, vertical: Table 4), over source (default gradient_sample)'")
    for name, axis in AXES.items():
        op.execute(f"CREATE OR REPLACE VIEW gradient_{name} AS "
                   + GRADIENT_VIEW.format(axis=axis, call=f"gradient_table('{name}')"))


def downgrade() -> None:
    for name, axis in AXES.items():
        op.execute(f"CREATE OR REPLACE VIEW gradient_{name} AS "
                   + GRADIENT_VIEW.format(axis=axis, call=OLD_GRADIENT_CALLS[name]))
    op.execute("DROP FUNCTION gradient_table(text, regclass)")
    op.execute("DROP TABLE gradient_binning")
    op.execute("CREATE OR REPLACE VIEW training_cutflow AS " + OLD_TRAINING_CUTFLOW)
    op.execute("CREATE OR REPLACE VIEW training_set AS " + TRAINING_SET.format(source="training_candidate",
                                                                                where=OLD_TRAINING_CUTS))
    op.execute("DROP VIEW training_stage")
    op.execute("CREATE OR REPLACE VIEW training_candidate AS "
               + CANDIDATE.format(solar_like=OLD_SOLAR_LIKE.format(p="a.", feh="fe_h")))
    op.execute(f"CREATE OR REPLACE VIEW solar_like AS SELECT {LAMOST_COLUMNS} FROM lamost_star WHERE "
               + OLD_SOLAR_LIKE.format(p="", feh="feh"))
    op.execute("DROP FUNCTION is_solar_like(float8, float8, float8)")
