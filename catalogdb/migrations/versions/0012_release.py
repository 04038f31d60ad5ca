"""The published catalogue is a table: final_catalog filled by `catalogdb publish`, and a release row per fill.

Before, final_catalog was a view over seven tables that chose "the latest finished predict run" by a query
on the run log, and every cone search paid for planning that join. From here on:
- prediction_catalog: the view (the one definition of final_catalog's columns), one row per (model_id,
  obsid) of cnn_prediction, joined to its survey rows;
- final_catalog: a table with the same columns, holding one model's rows of prediction_catalog, written
  in q3c_ang2ipix order (clustered on its q3c index) and analysed by `catalogdb publish`;
- release: one row per publish (model, the predict run, rows, time); the newest is what final_catalog holds.
The views that read final_catalog (gradient_sample, compare_distance_star, compare_parameters_star) are
replaced with the same text so they now read the table; their dependants keep working unchanged.
An existing database with predictions gets its latest predict run's model published here.

Frozen: this migration holds its own SQL and imports nothing of catalogdb.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SELECT = """
SELECT l.obsid AS obsid, l.ra AS ra, l.dec AS dec, l.snrg AS snrg, l.snrr AS snrr, s.flag AS flag, p.cnn_teff AS cnn_teff, p.cnn_logg AS cnn_logg, p.cnn_feh AS cnn_feh, p.cnn_mg AS cnn_mg, p.cnn_bprp AS cnn_bprp, p.cnn_distance AS cnn_distance, l.teff AS lasp_teff, l.teff_err AS lasp_teff_err, l.logg AS lasp_logg, l.logg_err AS lasp_logg_err, l.feh AS lasp_feh, l.feh_err AS lasp_feh_err, l.rv AS lasp_rv, l.rv_err AS lasp_rv_err, xg.source_id AS gaia_source_id, g.parallax AS parallax, g.parallax_over_error AS parallax_over_error, g.parallax_zeropoint AS parallax_zeropoint, g.parallax - g.parallax_zeropoint AS parallax_correction, g.phot_g_mean_mag AS gaia_g_mean_mag, g.bp_rp AS gaia_bp_rp, d.r_med_geo AS r_med_geo, xa.apogee_id AS "APOGEE_ID", p.cnn_teff_err AS cnn_teff_err, p.cnn_logg_err AS cnn_logg_err, p.cnn_feh_err AS cnn_feh_err, p.cnn_mg_err AS cnn_mg_err, p.cnn_bprp_err AS cnn_bprp_err, p.a_g AS a_g, p.a_g_source AS a_g_source, p.distance_p16 AS distance_p16, p.distance_p50 AS distance_p50, p.distance_p84 AS distance_p84, p.x AS x, p.y AS y, p.z AS z, p.r AS r, p.model_id AS model_id
FROM cnn_prediction p
JOIN lamost_star l ON l.obsid = p.obsid
JOIN spectrum s ON s.obsid = p.obsid
LEFT JOIN xmatch_lamost_gaia xg ON xg.obsid = p.obsid AND xg.best
LEFT JOIN gaia_source g ON g.source_id = xg.source_id
LEFT JOIN gaia_distance d ON d.source_id = xg.source_id
LEFT JOIN xmatch_lamost_apogee xa ON xa.obsid = p.obsid AND xa.best"""
LATEST_PREDICT = """(SELECT parameters ->> 'model_id' FROM run
                    WHERE command = 'predict' AND status = 'done' ORDER BY finished_at DESC LIMIT 1)"""

# The views that read final_catalog, as migrations 0005 and 0007 created them; replaced with the same text
# so that they read the table (CREATE OR REPLACE keeps their OIDs, so their own dependants stay valid).
DEPENDANTS = {
    "gradient_sample": """
SELECT obsid, cnn_feh AS feh, r / 1000.0 AS r_kpc, abs(z) / 1000.0 AS abs_z_kpc
FROM final_catalog WHERE cnn_feh IS NOT NULL AND r IS NOT NULL AND z IS NOT NULL""",
    "compare_distance_star": """
SELECT f.obsid, xa.apogee_id, f.cnn_distance, sh.d AS starhorse, dm.d AS distmass, an.d AS astronn
FROM final_catalog f
JOIN xmatch_lamost_apogee xa ON xa.obsid = f.obsid AND xa.best
LEFT JOIN LATERAL (
    SELECT v.dist50_pc AS d FROM apogee_starhorse v
    WHERE v.apogee_id = xa.apogee_id AND v.dist50_pc > 0
    ORDER BY (v.telescope = xa.telescope AND v.field = xa.field) DESC, v.telescope, v.field LIMIT 1
) sh ON true
LEFT JOIN LATERAL (
    SELECT v.weighted_dist AS d FROM apogee_distmass v
    WHERE v.apogee_id = xa.apogee_id AND v.weighted_dist > 0
    ORDER BY (v.telescope = xa.telescope AND v.field = xa.field) DESC, v.telescope, v.field LIMIT 1
) dm ON true
LEFT JOIN LATERAL (
    SELECT v.weighted_dist AS d FROM apogee_astronn v
    WHERE v.apogee_id = xa.apogee_id AND v.weighted_dist > 0
    ORDER BY (v.telescope = xa.telescope AND v.field = xa.field) DESC, v.telescope, v.field LIMIT 1
) an ON true
WHERE sh.d IS NOT NULL OR dm.d IS NOT NULL OR an.d IS NOT NULL""",
    "compare_parameters_star": """
SELECT 'APOGEE DR17'::text AS survey, f.obsid, f.snrg,
       f.cnn_teff::float8 AS cnn_teff, f.cnn_logg::float8 AS cnn_logg, f.cnn_feh::float8 AS cnn_feh,
       a.teff::float8 AS teff, a.logg::float8 AS logg, a.fe_h::float8 AS feh
FROM final_catalog f
JOIN xmatch_lamost_apogee xa ON xa.obsid = f.obsid AND xa.best
JOIN apogee_star a ON a.apogee_id = xa.apogee_id AND a.telescope = xa.telescope AND a.field = xa.field
WHERE a.starflag = 0 AND a.teff_err < 200 AND a.logg_err < 0.2
  AND a.fe_h_err < 0.2 AND f.snrg > 50
  AND a.teff IS NOT NULL AND a.logg IS NOT NULL AND a.fe_h IS NOT NULL
UNION ALL
SELECT 'GALAH DR3'::text, f.obsid, f.snrg, f.cnn_teff, f.cnn_logg, f.cnn_feh, g.teff, g.logg, g.fe_h
FROM final_catalog f
JOIN LATERAL (
    SELECT s.teff::float8, s.logg::float8, s.fe_h::float8 FROM galah_star s
    WHERE s.dr3_source_id = f.gaia_source_id
      AND s.flag_sp = 0 AND s.flag_fe_h = 0 AND s.red_flag = 0
      AND s.e_teff < 200 AND s.e_logg < 0.2 AND s.e_fe_h < 0.2
      AND s.teff IS NOT NULL AND s.logg IS NOT NULL AND s.fe_h IS NOT NULL
    ORDER BY coalesce(s.flag_repeat, 0), s.sobject_id LIMIT 1
) g ON true
WHERE f.snrg > 50""",
}

# Column comments follow their column: copied from the view being replaced to its successor.
COPY_COLUMN_COMMENTS = """
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT a.attname, col_description(a.attrelid, a.attnum) AS text FROM pg_attribute a
             WHERE a.attrelid = '{source}'::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND col_description(a.attrelid, a.attnum) IS NOT NULL
    LOOP
        EXECUTE format('COMMENT ON COLUMN {target}.%I IS %L', c.attname, c.text);
    END LOOP;
END
$$"""

UPGRADE = [
    "ALTER VIEW final_catalog RENAME TO prediction_catalog",
    f"CREATE OR REPLACE VIEW prediction_catalog AS {SELECT}",
    "COMMENT ON VIEW prediction_catalog IS 'Every prediction of cnn_prediction (one row per model_id, obsid) "
    "with the columns of Table D.1 of Shen & Luo (2024): the definition that catalogdb publish copies one "
    "model of into final_catalog'",
    "CREATE TABLE final_catalog AS SELECT * FROM prediction_catalog WITH NO DATA",
    "ALTER TABLE final_catalog ADD PRIMARY KEY (obsid)",
    "CREATE INDEX final_catalog_q3c_idx ON final_catalog (q3c_ang2ipix(ra, dec))",
    "ALTER TABLE final_catalog CLUSTER ON final_catalog_q3c_idx",
    COPY_COLUMN_COMMENTS.format(source="prediction_catalog", target="final_catalog"),
    "COMMENT ON TABLE final_catalog IS 'Table D.1 of Shen & Luo (2024): the CNN catalogue of the current "
    "release (the newest row of release), with the distance percentiles and galactocentric X, Y, Z, R added "
    "by catalogdb; written by catalogdb publish in q3c_ang2ipix order'",
    """
CREATE TABLE release (
    release_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id text NOT NULL REFERENCES cnn_model (model_id),
    predict_run_id bigint REFERENCES run (run_id),
    publish_run_id bigint REFERENCES run (run_id),
    row_count bigint NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
)""",
    "COMMENT ON TABLE release IS 'One row per catalogdb publish: the model whose predictions final_catalog "
    "holds, the predict run that made them, the publish run and the row count; the newest row is current'",
    "COMMENT ON COLUMN release.release_id IS 'Release number, increasing'",
    "COMMENT ON COLUMN release.model_id IS 'CNN model whose predictions were published'",
    "COMMENT ON COLUMN release.predict_run_id IS 'The run that wrote those predictions to cnn_prediction'",
    "COMMENT ON COLUMN release.publish_run_id IS 'The publish run'",
    "COMMENT ON COLUMN release.row_count IS 'Rows written to final_catalog'",
    "COMMENT ON COLUMN release.published_at IS 'When final_catalog was replaced'",
    *[f"CREATE OR REPLACE VIEW {name} AS {sql}" for name, sql in DEPENDANTS.items()],
    # An existing catalogue stays published: the model of the latest finished predict run, as before.
    f"""INSERT INTO final_catalog SELECT * FROM prediction_catalog WHERE model_id = {LATEST_PREDICT}
        ORDER BY q3c_ang2ipix(ra, dec)""",
    f"""INSERT INTO release (model_id, predict_run_id, row_count)
        SELECT m.model_id, (SELECT run_id FROM run WHERE command = 'predict' AND status = 'done'
                            ORDER BY finished_at DESC LIMIT 1), (SELECT count(*) FROM final_catalog)
        FROM (SELECT {LATEST_PREDICT} AS model_id) m WHERE m.model_id IS NOT NULL""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE final_catalog RENAME TO final_catalog_0012")
    op.execute("ALTER VIEW prediction_catalog RENAME TO final_catalog")
    op.execute(f"CREATE OR REPLACE VIEW final_catalog AS {SELECT}\nWHERE p.model_id = {LATEST_PREDICT}")
    op.execute("COMMENT ON VIEW final_catalog IS 'Table D.1 of Shen & Luo (2024): the CNN catalogue of the most "
               "recent prediction run, with the distance percentiles and galactocentric X, Y, Z, R added by "
               "catalogdb'")
    for name, sql in DEPENDANTS.items():
        op.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    op.execute("DROP TABLE release")
    op.execute("DROP TABLE final_catalog_0012")
