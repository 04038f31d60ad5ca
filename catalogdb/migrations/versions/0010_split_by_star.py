"""training_set split by star: repeat spectra of one LAMOST uid share the test/reference side and the fold.

Until 0009 the md5 hash was of obsid, so two spectra of one star could land one in the test set and
one in a training fold, flattering the test metrics. The hash is now of the star's uid (obsid where
a row has no uid). Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CUTS = """aspcap_solar_like AND parallax_over_error > 5 AND snrg > 10 AND fibermask = 0
    AND mg IS NOT NULL AND bprp0 IS NOT NULL AND teff IS NOT NULL AND logg IS NOT NULL
    AND fe_h IS NOT NULL AND has_spectrum"""

SPLIT = """
SELECT obsid, teff, logg, feh, mg, bprp0, snrg,
       CASE WHEN h % 5 = 0 THEN 'test' ELSE 'reference' END AS split,
       CASE WHEN h % 5 = 0 THEN NULL ELSE ((h / 5) % 5)::int END AS fold
FROM labelled"""

BY_STAR = f"""
WITH labelled AS (
  SELECT obsid, teff, logg, fe_h AS feh, mg, bprp0, snrg,
         ('x' || substr(md5(coalesce((SELECT l.uid FROM lamost_star l WHERE l.obsid = c.obsid), obsid::text)),
                        1, 8))::bit(32)::bigint AS h
  FROM training_candidate c
  WHERE {CUTS}
){SPLIT}"""

BY_OBSID = f"""
WITH labelled AS (
  SELECT obsid, teff, logg, fe_h AS feh, mg, bprp0, snrg,
         ('x' || substr(md5(obsid::text), 1, 8))::bit(32)::bigint AS h
  FROM training_candidate
  WHERE {CUTS}
){SPLIT}"""

COMMENT = ("The training set of Shen & Luo (2024) (Table 2, last row): ASPCAP Teff, log g, [Fe/H], M_G (Eq. 1) "
           "and (BP-RP)_0 labels; split 8:2 into reference and test and five folds on the reference set by an "
           "md5 hash of the LAMOST uid (obsid where uid is missing), so repeat spectra of one star stay on one "
           "side and in one fold, and the split is stable under re-runs")


def upgrade() -> None:
    op.execute(f"CREATE OR REPLACE VIEW training_set AS {BY_STAR}")
    op.execute("COMMENT ON VIEW training_set IS '" + COMMENT.replace("'", "''") + "'")


def downgrade() -> None:
    op.execute(f"CREATE OR REPLACE VIEW training_set AS {BY_OBSID}")
    op.execute("COMMENT ON VIEW training_set IS 'The training set of Shen & Luo (2024) (Table 2, last row): ASPCAP "
               "Teff, log g, [Fe/H], M_G (Eq. 1) and (BP-RP)_0 labels; split 8:2 into reference and test and five "
               "folds on the reference set, by an md5 hash of obsid so the split is stable under re-runs'")
