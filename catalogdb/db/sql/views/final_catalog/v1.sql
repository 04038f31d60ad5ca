-- final_catalog view, version 1 (migration 0004). Released: never edit; a change is a new version.
CREATE VIEW final_catalog AS
SELECT l.obsid AS obsid, l.ra AS ra, l.dec AS dec, l.snrg AS snrg, l.snrr AS snrr, s.flag AS flag, p.cnn_teff AS cnn_teff, p.cnn_logg AS cnn_logg, p.cnn_feh AS cnn_feh, p.cnn_mg AS cnn_mg, p.cnn_bprp AS cnn_bprp, p.cnn_distance AS cnn_distance, l.teff AS lasp_teff, l.teff_err AS lasp_teff_err, l.logg AS lasp_logg, l.logg_err AS lasp_logg_err, l.feh AS lasp_feh, l.feh_err AS lasp_feh_err, l.rv AS lasp_rv, l.rv_err AS lasp_rv_err, xg.source_id AS gaia_source_id, g.parallax AS parallax, g.parallax_over_error AS parallax_over_error, g.parallax_zeropoint AS parallax_zeropoint, g.parallax - g.parallax_zeropoint AS parallax_correction, g.phot_g_mean_mag AS gaia_g_mean_mag, g.bp_rp AS gaia_bp_rp, d.r_med_geo AS r_med_geo, xa.apogee_id AS "APOGEE_ID", p.cnn_teff_err AS cnn_teff_err, p.cnn_logg_err AS cnn_logg_err, p.cnn_feh_err AS cnn_feh_err, p.cnn_mg_err AS cnn_mg_err, p.cnn_bprp_err AS cnn_bprp_err, p.a_g AS a_g, p.a_g_source AS a_g_source, p.distance_p16 AS distance_p16, p.distance_p50 AS distance_p50, p.distance_p84 AS distance_p84, p.x AS x, p.y AS y, p.z AS z, p.r AS r, p.model_id AS model_id
FROM cnn_prediction p
JOIN lamost_star l ON l.obsid = p.obsid
JOIN spectrum s ON s.obsid = p.obsid
LEFT JOIN xmatch_lamost_gaia xg ON xg.obsid = p.obsid AND xg.best
LEFT JOIN gaia_source g ON g.source_id = xg.source_id
LEFT JOIN gaia_distance d ON d.source_id = xg.source_id
LEFT JOIN xmatch_lamost_apogee xa ON xa.obsid = p.obsid AND xa.best
WHERE p.model_id = (SELECT parameters ->> 'model_id' FROM run
                    WHERE command = 'predict' AND status = 'done' ORDER BY finished_at DESC LIMIT 1);
COMMENT ON VIEW final_catalog IS 'Table D.1 of Shen & Luo (2024): the CNN catalogue of the most recent prediction run, with the distance percentiles and galactocentric X, Y, Z, R added by catalogdb';
COMMENT ON COLUMN final_catalog.obsid IS 'LAMOST unique spectrum identifier';
COMMENT ON COLUMN final_catalog.ra IS '[deg] Right ascension (ICRS) from the LAMOST catalogue';
COMMENT ON COLUMN final_catalog.dec IS '[deg] Declination (ICRS) from the LAMOST catalogue';
COMMENT ON COLUMN final_catalog.snrg IS 'Signal-to-noise ratio in the g band';
COMMENT ON COLUMN final_catalog.snrr IS 'Signal-to-noise ratio in the r band';
COMMENT ON COLUMN final_catalog.flag IS '1 when pixels outside [0.1, 1.2] were set to 1.0 in preprocessing';
COMMENT ON COLUMN final_catalog.cnn_teff IS '[K] CNN effective temperature';
COMMENT ON COLUMN final_catalog.cnn_logg IS '[dex] CNN surface gravity log g';
COMMENT ON COLUMN final_catalog.cnn_feh IS '[dex] CNN metallicity [Fe/H]';
COMMENT ON COLUMN final_catalog.cnn_mg IS '[mag] CNN absolute magnitude M_G';
COMMENT ON COLUMN final_catalog.cnn_bprp IS '[mag] CNN intrinsic colour (BP-RP)_0';
COMMENT ON COLUMN final_catalog.cnn_distance IS '[pc] Distance: mode of P(d) (Eq. 5)';
COMMENT ON COLUMN final_catalog.lasp_teff IS '[K] LASP effective temperature';
COMMENT ON COLUMN final_catalog.lasp_teff_err IS '[K] Uncertainty of lasp_teff';
COMMENT ON COLUMN final_catalog.lasp_logg IS '[dex] LASP surface gravity';
COMMENT ON COLUMN final_catalog.lasp_logg_err IS '[dex] Uncertainty of lasp_logg';
COMMENT ON COLUMN final_catalog.lasp_feh IS '[dex] LASP metallicity';
COMMENT ON COLUMN final_catalog.lasp_feh_err IS '[dex] Uncertainty of lasp_feh';
COMMENT ON COLUMN final_catalog.lasp_rv IS '[km/s] LASP radial velocity';
COMMENT ON COLUMN final_catalog.lasp_rv_err IS '[km/s] Uncertainty of lasp_rv';
COMMENT ON COLUMN final_catalog.gaia_source_id IS 'Gaia DR3 source_id of the best match within 3 arcsec';
COMMENT ON COLUMN final_catalog.parallax IS '[mas] Gaia DR3 parallax';
COMMENT ON COLUMN final_catalog.parallax_over_error IS 'Gaia DR3 parallax over its error';
COMMENT ON COLUMN final_catalog.parallax_zeropoint IS '[mas] Lindegren et al. (2021) parallax zero point';
COMMENT ON COLUMN final_catalog.parallax_correction IS '[mas] Parallax minus its zero point';
COMMENT ON COLUMN final_catalog.gaia_g_mean_mag IS '[mag] Gaia G magnitude';
COMMENT ON COLUMN final_catalog.gaia_bp_rp IS '[mag] Gaia BP - RP colour';
COMMENT ON COLUMN final_catalog.r_med_geo IS '[pc] Bailer-Jones et al. (2021) median geometric distance';
COMMENT ON COLUMN final_catalog."APOGEE_ID" IS 'APOGEE DR17 APOGEE_ID of the best match within 1 arcsec';
COMMENT ON COLUMN final_catalog.cnn_teff_err IS '[K] Spread of the fold models'' Teff';
COMMENT ON COLUMN final_catalog.cnn_logg_err IS '[dex] Spread of the fold models'' log g';
COMMENT ON COLUMN final_catalog.cnn_feh_err IS '[dex] Spread of the fold models'' [Fe/H]';
COMMENT ON COLUMN final_catalog.cnn_mg_err IS '[mag] Spread of the fold models'' M_G';
COMMENT ON COLUMN final_catalog.cnn_bprp_err IS '[mag] Spread of the fold models'' (BP-RP)_0';
COMMENT ON COLUMN final_catalog.a_g IS '[mag] G-band extinction used for the distance';
COMMENT ON COLUMN final_catalog.a_g_source IS 'bp_rp: 1.8626 (bp_rp - cnn_bprp); ag_gspphot: GSP-Phot fallback';
COMMENT ON COLUMN final_catalog.distance_p16 IS '[pc] 16th percentile of P(d)';
COMMENT ON COLUMN final_catalog.distance_p50 IS '[pc] Median of P(d)';
COMMENT ON COLUMN final_catalog.distance_p84 IS '[pc] 84th percentile of P(d)';
COMMENT ON COLUMN final_catalog.x IS '[pc] Galactocentric X (astropy default frame)';
COMMENT ON COLUMN final_catalog.y IS '[pc] Galactocentric Y';
COMMENT ON COLUMN final_catalog.z IS '[pc] Galactocentric Z';
COMMENT ON COLUMN final_catalog.r IS '[pc] Galactocentric cylindrical radius R';
COMMENT ON COLUMN final_catalog.model_id IS 'CNN model that made the prediction';
