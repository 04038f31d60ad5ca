"""Metallicity gradients (Sect. 4.4, Tables 3 and 4 of Shen & Luo 2024) as a SQL function and two views.

Least squares by the regr_* aggregates; standard errors as scipy.stats.linregress defines them:
slope_err = sqrt((Syy - Sxy^2/Sxx) / (n - 2) / Sxx), intercept_err = slope_err * sqrt(Sxx/n + xbar^2).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = [
    """
CREATE VIEW gradient_sample AS
SELECT obsid, cnn_feh AS feh, r / 1000.0 AS r_kpc, abs(z) / 1000.0 AS abs_z_kpc
FROM final_catalog WHERE cnn_feh IS NOT NULL AND r IS NOT NULL AND z IS NOT NULL
""",
    "COMMENT ON VIEW gradient_sample IS 'Stars of final_catalog with [Fe/H] (dex), R and |Z| (kpc): "
    "the input of metallicity_gradient()'",
    """
CREATE FUNCTION metallicity_gradient(
    x text, bin_by text, bin_start float8, bin_stop float8, bin_width float8, x_min float8, x_max float8,
    source regclass DEFAULT 'gradient_sample')
RETURNS TABLE (bin_center float8, slope float8, slope_err float8, intercept float8, intercept_err float8,
               n bigint)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    -- Bins are [lo, lo + width); the last one also takes bin_stop itself.
    RETURN QUERY EXECUTE format($q$
        WITH s AS (
            SELECT least(floor((%2$I - $1) / $3), ceil(($2 - $1) / $3) - 1)::int AS k, %1$I AS xv, feh AS yv
            FROM %3$s
            WHERE %2$I >= $1 AND %2$I <= $2 AND %1$I BETWEEN $4 AND $5 AND feh IS NOT NULL
        ), g AS (
            SELECT k, regr_count(yv, xv) AS n, regr_slope(yv, xv) AS slope, regr_intercept(yv, xv) AS intercept,
                   regr_sxx(yv, xv) AS sxx, regr_syy(yv, xv) AS syy, regr_sxy(yv, xv) AS sxy,
                   regr_avgx(yv, xv) AS xbar
            FROM s GROUP BY k
        ), e AS (
            SELECT *, sqrt(greatest(syy - sxy * sxy / nullif(sxx, 0), 0) / nullif(n - 2, 0) / nullif(sxx, 0))
                      AS slope_err
            FROM g
        )
        SELECT $1 + (k + 0.5) * $3, slope, slope_err, intercept, slope_err * sqrt(sxx / n + xbar * xbar), n
        FROM e ORDER BY k
    $q$, x, bin_by, source)
    USING bin_start, bin_stop, bin_width, x_min, x_max;
END
$fn$
""",
    "COMMENT ON FUNCTION metallicity_gradient(text, text, float8, float8, float8, float8, float8, regclass) IS "
    "'Least-squares [Fe/H] = slope * x + intercept in bins of bin_by (width bin_width from bin_start to "
    "bin_stop), using rows with x_min <= x <= x_max; errors as scipy.stats.linregress'",
    """
CREATE VIEW gradient_radial AS
SELECT bin_center AS abs_z, slope, slope_err, intercept, intercept_err, n
FROM metallicity_gradient('r_kpc', 'abs_z_kpc', 0, 2, 0.2, 7, 14)
""",
    "COMMENT ON VIEW gradient_radial IS 'Table 3 of Shen & Luo (2024): radial [Fe/H] gradient (dex/kpc) in "
    "|Z| bins of 0.2 kpc from 0 to 2 kpc, stars with 7 <= R <= 14 kpc'",
    """
CREATE VIEW gradient_vertical AS
SELECT bin_center AS r, slope, slope_err, intercept, intercept_err, n
FROM metallicity_gradient('abs_z_kpc', 'r_kpc', 7, 14, 1, 0, 2)
""",
    "COMMENT ON VIEW gradient_vertical IS 'Table 4 of Shen & Luo (2024): vertical [Fe/H] gradient (dex/kpc) "
    "in R bins of 1 kpc from 7 to 14 kpc, stars with |Z| <= 2 kpc'",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW gradient_vertical")
    op.execute("DROP VIEW gradient_radial")
    op.execute("DROP FUNCTION metallicity_gradient(text, text, float8, float8, float8, float8, float8, regclass)")
    op.execute("DROP VIEW gradient_sample")
