"""Clamped parallax zero points, duplicate-aware APOGEE best matches, StarHorse keyed by APOGEE_ID.

- gaia_source.zpt_clamped: gaiadr3-zeropoint still returns a zero point outside its calibrated range
  (6 < G < 21; 1.1 < nu_eff < 1.9 for 5-p, 1.24 < pseudocolour < 1.72 for 6-p solutions), holding G and
  the pseudocolour at the range edge and continuing nu_eff linearly, with a warning; `catalogdb xmatch`
  now stores that value and sets zpt_clamped = true. zpt_valid keeps its meaning (inside the calibrated
  range). Rows computed before keep NULL there until `catalogdb xmatch` runs again.
- xmatch_lamost_apogee: a duplicate allStar entry (EXTRATARG bit 4) ranks after the primary entry of its
  star whatever the separations; the comments say so.
- apogee_starhorse: StarHorse DR17 (APOGEE_DR17_EDR3_STARHORSE_v2.fits) has one row per APOGEE_ID and no
  TELESCOPE or FIELD, so the key is apogee_id and telescope and field may be NULL. Migration 0007 creates
  the table from the current declaration, so on a new database this step finds that key already.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COMMENTS = {  # (table, column or None for the table): (comment from here on, comment before)
    ("gaia_source", "parallax_zeropoint"): (
        "Lindegren et al. (2021) parallax zero point from gaiadr3-zeropoint (zpt.get_zpt), its value also outside "
        "the calibrated range (see zpt_clamped); NULL where the package gives none (2-parameter solution, a "
        "missing input) or before computed",
        "Lindegren et al. (2021) parallax zero point; NULL outside its validity range"),
    ("gaia_source", "zpt_valid"): (
        "True when the zero point is computed inside the calibrated range (6 < G < 21; 1.1 < nu_eff < 1.9 for "
        "5-p, 1.24 < pseudocolour < 1.72 for 6-p solutions), false otherwise; NULL before computed",
        "True when the zero point is within 6 < G < 21 and its colour range; NULL before computed"),
    ("apogee_star", "extratarg"): (
        "EXTRATARG bits (0 = main survey; bit 4 = 16: duplicate, not the highest-S/N entry of this APOGEE_ID)",
        "EXTRATARG bits (0 = main survey, not a duplicate)"),
    ("xmatch_lamost_apogee", "rank"): (
        "Order of the matches of this obsid: primary allStar entries before duplicates (EXTRATARG bit 4), then by "
        "separation, then by (apogee_id, telescope, field)",
        "1 for the nearest match of this obsid"),
    ("xmatch_lamost_apogee", "best"): (
        "True for rank 1: the nearest primary entry (a duplicate entry only when no primary one is in the radius)",
        "True for the nearest match"),
    ("xmatch_lamost_apogee", None): (
        "LAMOST x APOGEE pairs within the crossmatch radius (1 arcsec in the paper); a duplicate allStar entry "
        "of a star never wins over its primary entry",
        "LAMOST x APOGEE pairs within the crossmatch radius (1 arcsec in the paper)"),
    ("xmatch_lamost_gaia", "rank"): (
        "Order of the matches of this obsid: by separation, then by source_id",
        "1 for the nearest match of this obsid"),
    ("xmatch_lamost_gaia", "best"): ("True for rank 1: the nearest match", "True for the nearest match"),
}

ZPT_CLAMPED = ("True when an input lay outside the calibrated range and the zero point is the package's value there "
               "(held at G = 6 or 21 and at the pseudocolour limits, continued linearly in nu_eff); false inside; "
               "NULL where the package gives no value or before computed")

STARHORSE_COMMENTS = {
    "telescope": "APOGEE telescope; NULL for StarHorse DR17, which has none",
    "field": "APOGEE field name; NULL for StarHorse DR17, which has none",
    "dist16_pc": "StarHorse 16th percentile of the distance posterior (file column dist16, kpc)",
    "dist50_pc": "StarHorse median distance (file column dist50, kpc)",
    "dist84_pc": "StarHorse 84th percentile of the distance posterior (file column dist84, kpc)",
}
STARHORSE_TABLE = ("APOGEE DR17 StarHorse value-added catalogue (Queiroz et al. 2018, 2020, 2023): Bayesian "
                   "isochrone distances, one row per APOGEE_ID")

# An older database may hold StarHorse rows ingested per (APOGEE_ID, TELESCOPE, FIELD): refuse rather than
# pick one of a star's rows silently.
STARHORSE_ONE_ROW_PER_STAR = """
DO $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM (SELECT apogee_id FROM apogee_starhorse GROUP BY apogee_id HAVING count(*) > 1) d;
  IF n > 0 THEN
    RAISE EXCEPTION 'apogee_starhorse holds % APOGEE_IDs with more than one row, but StarHorse DR17 has one row '
      'per APOGEE_ID: empty the table (TRUNCATE apogee_starhorse), migrate again and ingest '
      'APOGEE_DR17_EDR3_STARHORSE_v2.fits', n;
  END IF;
END $$"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comment(table: str, column: str | None, text: str) -> None:
    target = f"TABLE {table}" if column is None else f"COLUMN {table}.{column}"
    op.execute(f"COMMENT ON {target} IS {_literal(text)}")


def upgrade() -> None:
    op.execute("ALTER TABLE gaia_source ADD COLUMN zpt_clamped boolean")
    _comment("gaia_source", "zpt_clamped", ZPT_CLAMPED)
    for (table, column), (text, _) in COMMENTS.items():
        _comment(table, column, text)
    op.execute(STARHORSE_ONE_ROW_PER_STAR)
    op.execute("ALTER TABLE apogee_starhorse DROP CONSTRAINT IF EXISTS apogee_starhorse_pkey")
    op.execute("ALTER TABLE apogee_starhorse ALTER COLUMN telescope DROP NOT NULL, "
               "ALTER COLUMN field DROP NOT NULL")
    op.execute("ALTER TABLE apogee_starhorse ADD CONSTRAINT apogee_starhorse_pkey PRIMARY KEY (apogee_id)")
    for column, text in STARHORSE_COMMENTS.items():
        _comment("apogee_starhorse", column, text)
    _comment("apogee_starhorse", None, STARHORSE_TABLE)


def downgrade() -> None:
    # apogee_starhorse keeps its apogee_id key: the earlier (apogee_id, telescope, field) key cannot hold
    # StarHorse DR17 rows, and migration 0007 (which drops the table further down) creates it with this key.
    for (table, column), (_, text) in COMMENTS.items():
        _comment(table, column, text)
    op.execute("ALTER TABLE gaia_source DROP COLUMN zpt_clamped")
