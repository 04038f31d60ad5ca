"""Comparison catalogues and views (Sects. 4.2-4.3, Figs. 10-11 of Shen & Luo 2024).

Tables (DDL in catalogdb/db/sql/comparisons/v1.sql, never edited once released): apogee_starhorse, apogee_distmass,
apogee_astronn (APOGEE DR17 distance VACs, keyed like allStar) and galah_star (GALAH DR3).

Views:
- compare_distance_star: per final_catalog spectrum with an APOGEE match, our distance and the three
  catalogues' (the allStar row of the best 1" match first, else any row of that APOGEE_ID).
- compare_distance: per pair (ours against each catalogue, then the catalogues pairwise), N and the mean
  and standard deviation of x - y (pc) and of (x - y) / y, as in Fig. 10.
- compare_parameters_star: CNN and survey Teff, log g, [Fe/H] of the spectra passing the quality cuts:
  APOGEE DR17 STARFLAG = 0; GALAH DR3 flag_sp = flag_fe_h = red_flag = 0 (one spectrum per Gaia DR3
  source, flag_repeat = 0 first); both errors < 200 K / 0.2 dex / 0.2 dex and LAMOST snrg > 50.
- compare_parameters: per survey and parameter, N, bias (mean of CNN - survey) and scatter (its
  standard deviation), as in Fig. 11.

Frozen: this migration holds its own SQL (and that versioned file) and imports nothing of catalogdb.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES_SQL = Path(__file__).resolve().parents[2] / "db" / "sql" / "comparisons" / "v1.sql"
TABLES = ["apogee_starhorse", "apogee_distmass", "apogee_astronn", "galah_star"]

# One VAC row per APOGEE_ID: the row of the best match's (telescope, field) when it has a distance.
_VAC = """LEFT JOIN LATERAL (
    SELECT v.{column} AS d FROM {table} v
    WHERE v.apogee_id = xa.apogee_id AND v.{column} > 0
    ORDER BY (v.telescope = xa.telescope AND v.field = xa.field) DESC, v.telescope, v.field LIMIT 1
) {alias} ON true"""

DISTANCE_CATALOGUES = [  # (name in the views, table, column, alias)
    ("StarHorse", "apogee_starhorse", "dist50_pc", "sh"),
    ("DistMass", "apogee_distmass", "weighted_dist", "dm"),
    ("astroNN", "apogee_astronn", "weighted_dist", "an"),
]
# (panel, x, y) as in Fig. 10: ours against each catalogue, then the catalogues pairwise.
DISTANCE_PAIRS = [
    (1, "this work", "StarHorse"), (2, "this work", "DistMass"), (3, "this work", "astroNN"),
    (4, "DistMass", "StarHorse"), (5, "astroNN", "StarHorse"), (6, "DistMass", "astroNN"),
]
_COLUMN = {"this work": "cnn_distance", "StarHorse": "starhorse", "DistMass": "distmass", "astroNN": "astronn"}

# Quality cuts of Sect. 4.3 (applied to the survey's own errors and to LAMOST's snrg).
SNRG_MIN = 50
ERR_MAX = {"teff": 200, "logg": 0.2, "feh": 0.2}

PARAMETERS = [("teff", "K"), ("logg", "dex"), ("feh", "dex")]


def _distance_star_sql() -> str:
    joins = "\n".join(_VAC.format(column=c, table=t, alias=a) for _, t, c, a in DISTANCE_CATALOGUES)
    return f"""
SELECT f.obsid, xa.apogee_id, f.cnn_distance, sh.d AS starhorse, dm.d AS distmass, an.d AS astronn
FROM final_catalog f
JOIN xmatch_lamost_apogee xa ON xa.obsid = f.obsid AND xa.best
{joins}
WHERE sh.d IS NOT NULL OR dm.d IS NOT NULL OR an.d IS NOT NULL
"""


def _distance_sql() -> str:
    parts = []
    for panel, x, y in DISTANCE_PAIRS:
        cx, cy = _COLUMN[x], _COLUMN[y]
        parts.append(f"SELECT {panel} AS panel, '{x}'::text AS catalogue, '{y}'::text AS reference, "
                     f"{cx}::float8 AS x, {cy}::float8 AS y FROM compare_distance_star "
                     f"WHERE {cx} > 0 AND {cy} > 0")
    union = "\n    UNION ALL ".join(parts)
    return f"""
WITH pairs AS (
    {union}
)
SELECT panel, catalogue, reference, count(*) AS n,
       avg(x - y) AS mean_diff, stddev_samp(x - y) AS std_diff,
       avg((x - y) / y) AS mean_frac, stddev_samp((x - y) / y) AS std_frac
FROM pairs GROUP BY panel, catalogue, reference ORDER BY panel
"""


def _parameters_star_sql() -> str:
    return f"""
SELECT 'APOGEE DR17'::text AS survey, f.obsid, f.snrg,
       f.cnn_teff::float8 AS cnn_teff, f.cnn_logg::float8 AS cnn_logg, f.cnn_feh::float8 AS cnn_feh,
       a.teff::float8 AS teff, a.logg::float8 AS logg, a.fe_h::float8 AS feh
FROM final_catalog f
JOIN xmatch_lamost_apogee xa ON xa.obsid = f.obsid AND xa.best
JOIN apogee_star a ON a.apogee_id = xa.apogee_id AND a.telescope = xa.telescope AND a.field = xa.field
WHERE a.starflag = 0 AND a.teff_err < {ERR_MAX['teff']} AND a.logg_err < {ERR_MAX['logg']}
  AND a.fe_h_err < {ERR_MAX['feh']} AND f.snrg > {SNRG_MIN}
  AND a.teff IS NOT NULL AND a.logg IS NOT NULL AND a.fe_h IS NOT NULL
UNION ALL
SELECT 'GALAH DR3'::text, f.obsid, f.snrg, f.cnn_teff, f.cnn_logg, f.cnn_feh, g.teff, g.logg, g.fe_h
FROM final_catalog f
JOIN LATERAL (
    SELECT s.teff::float8, s.logg::float8, s.fe_h::float8 FROM galah_star s
    WHERE s.dr3_source_id = f.gaia_source_id
      AND s.flag_sp = 0 AND s.flag_fe_h = 0 AND s.red_flag = 0
      AND s.e_teff < {ERR_MAX['teff']} AND s.e_logg < {ERR_MAX['logg']} AND s.e_fe_h < {ERR_MAX['feh']}
      AND s.teff IS NOT NULL AND s.logg IS NOT NULL AND s.fe_h IS NOT NULL
    ORDER BY coalesce(s.flag_repeat, 0), s.sobject_id LIMIT 1
) g ON true
WHERE f.snrg > {SNRG_MIN}
"""


def _parameters_sql() -> str:
    parts = []
    for order, (name, unit) in enumerate(PARAMETERS, start=1):
        parts.append(f"SELECT survey, {order} AS k, '{name}'::text AS parameter, '{unit}'::text AS unit, "
                     f"cnn_{name} - {name} AS diff FROM compare_parameters_star WHERE cnn_{name} IS NOT NULL")
    union = "\n    UNION ALL ".join(parts)
    return f"""
WITH d AS (
    {union}
)
SELECT survey, parameter, unit, count(*) AS n, avg(diff) AS bias, stddev_samp(diff) AS scatter
FROM d GROUP BY survey, k, parameter, unit ORDER BY survey, k
"""


VIEWS = [
    ("compare_distance_star", _distance_star_sql(),
     "Sect. 4.2 of Shen & Luo (2024): per final_catalog spectrum with an APOGEE DR17 match, cnn_distance and "
     "the StarHorse (dist50_pc), DistMass (WEIGHTED_DIST) and astroNN (weighted_dist) distances, pc"),
    ("compare_distance", _distance_sql(),
     "Fig. 10 of Shen & Luo (2024): per pair (catalogue x against reference y) N, mean and standard deviation of "
     "x - y (pc) and of (x - y) / y; paper: mean fractional difference +7 % (StarHorse), -4 % (DistMass), "
     "-4 % (astroNN); scatter 123, 165, 117 pc"),
    ("compare_parameters_star", _parameters_star_sql(),
     "Sect. 4.3 of Shen & Luo (2024): CNN and survey Teff (K), log g, [Fe/H] (dex) of the spectra passing the "
     "quality cuts: APOGEE DR17 STARFLAG = 0; GALAH DR3 flag_sp = flag_fe_h = red_flag = 0 (matched by Gaia "
     "DR3 source_id, flag_repeat = 0 first); survey errors < 200 K / 0.2 dex / 0.2 dex; LAMOST snrg > 50"),
    ("compare_parameters", _parameters_sql(),
     "Fig. 11 of Shen & Luo (2024): per survey and parameter N, bias (mean of CNN - survey) and scatter "
     "(standard deviation); paper scatter APOGEE 121 K, 0.12, 0.06 dex (N = 2,677); "
     "GALAH 97 K, 0.14, 0.13 dex (N = 2,218)"),
]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.get_bind().exec_driver_sql(TABLES_SQL.read_text(encoding="utf-8"))
    for name, sql, comment in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {sql}")
        op.execute(f"COMMENT ON VIEW {name} IS {_literal(comment)}")


def downgrade() -> None:
    for name, _, _ in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
