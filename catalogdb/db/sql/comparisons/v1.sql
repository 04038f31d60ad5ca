-- Comparison catalogues, version 1 (migration 0007). Released: never edit; a change is a new version.
CREATE TABLE apogee_starhorse (
	apogee_id TEXT NOT NULL, 
	telescope TEXT, 
	field TEXT, 
	dist16_pc REAL, 
	dist50_pc REAL, 
	dist84_pc REAL, 
	PRIMARY KEY (apogee_id)
);
COMMENT ON TABLE apogee_starhorse IS 'APOGEE DR17 StarHorse value-added catalogue (Queiroz et al. 2018, 2020, 2023): Bayesian isochrone distances, one row per APOGEE_ID';
COMMENT ON COLUMN apogee_starhorse.apogee_id IS 'APOGEE object name (APOGEE_ID)';
COMMENT ON COLUMN apogee_starhorse.telescope IS 'APOGEE telescope; NULL for StarHorse DR17, which has none';
COMMENT ON COLUMN apogee_starhorse.field IS 'APOGEE field name; NULL for StarHorse DR17, which has none';
COMMENT ON COLUMN apogee_starhorse.dist16_pc IS 'StarHorse 16th percentile of the distance posterior (file column dist16, kpc)';
COMMENT ON COLUMN apogee_starhorse.dist50_pc IS 'StarHorse median distance (file column dist50, kpc)';
COMMENT ON COLUMN apogee_starhorse.dist84_pc IS 'StarHorse 84th percentile of the distance posterior (file column dist84, kpc)';
CREATE TABLE apogee_distmass (
	apogee_id TEXT NOT NULL, 
	telescope TEXT NOT NULL, 
	field TEXT NOT NULL, 
	weighted_dist REAL, 
	weighted_dist_err REAL, 
	mass REAL, 
	PRIMARY KEY (apogee_id, telescope, field)
);
COMMENT ON TABLE apogee_distmass IS 'APOGEE DR17 DistMass value-added catalogue (Stone-Martinez et al. 2024): neural-network distances and masses';
COMMENT ON COLUMN apogee_distmass.apogee_id IS 'APOGEE object name (APOGEE_ID)';
COMMENT ON COLUMN apogee_distmass.telescope IS 'APOGEE telescope (apo25m, lco25m, apo1m)';
COMMENT ON COLUMN apogee_distmass.field IS 'APOGEE field name';
COMMENT ON COLUMN apogee_distmass.weighted_dist IS 'DistMass distance (WEIGHTED_DIST)';
COMMENT ON COLUMN apogee_distmass.weighted_dist_err IS 'Uncertainty of WEIGHTED_DIST';
COMMENT ON COLUMN apogee_distmass.mass IS 'DistMass stellar mass';
CREATE TABLE apogee_astronn (
	apogee_id TEXT NOT NULL, 
	telescope TEXT NOT NULL, 
	field TEXT NOT NULL, 
	weighted_dist REAL, 
	weighted_dist_error REAL, 
	PRIMARY KEY (apogee_id, telescope, field)
);
COMMENT ON TABLE apogee_astronn IS 'APOGEE DR17 astroNN value-added catalogue (Leung & Bovy 2019a,b): neural-network distances';
COMMENT ON COLUMN apogee_astronn.apogee_id IS 'APOGEE object name (APOGEE_ID)';
COMMENT ON COLUMN apogee_astronn.telescope IS 'APOGEE telescope (apo25m, lco25m, apo1m)';
COMMENT ON COLUMN apogee_astronn.field IS 'APOGEE field name';
COMMENT ON COLUMN apogee_astronn.weighted_dist IS 'astroNN distance: inverse-variance weighted combination of the NN and Gaia parallaxes';
COMMENT ON COLUMN apogee_astronn.weighted_dist_error IS 'Uncertainty of weighted_dist';
CREATE TABLE galah_star (
	sobject_id BIGSERIAL NOT NULL, 
	star_id TEXT, 
	dr3_source_id BIGINT, 
	ra DOUBLE PRECISION, 
	dec DOUBLE PRECISION, 
	snr_c3_iraf REAL, 
	flag_repeat INTEGER, 
	teff REAL, 
	e_teff REAL, 
	logg REAL, 
	e_logg REAL, 
	fe_h REAL, 
	e_fe_h REAL, 
	flag_sp INTEGER, 
	flag_fe_h INTEGER, 
	red_flag INTEGER, 
	PRIMARY KEY (sobject_id)
);
CREATE INDEX galah_star_q3c_idx ON galah_star (q3c_ang2ipix(ra, dec));
COMMENT ON TABLE galah_star IS 'GALAH DR3 main allstar catalogue (Buder et al. 2021), one row per spectrum (sobject_id)';
COMMENT ON COLUMN galah_star.sobject_id IS 'GALAH spectrum identifier';
COMMENT ON COLUMN galah_star.star_id IS '2MASS identifier of the star';
COMMENT ON COLUMN galah_star.dr3_source_id IS 'Gaia DR3 (EDR3) source_id given by GALAH';
COMMENT ON COLUMN galah_star.ra IS 'Right ascension (ICRS) from Gaia DR2 (ra_dr2)';
COMMENT ON COLUMN galah_star.dec IS 'Declination (ICRS) from Gaia DR2 (dec_dr2)';
COMMENT ON COLUMN galah_star.snr_c3_iraf IS 'S/N per pixel in the third (red) HERMES arm';
COMMENT ON COLUMN galah_star.flag_repeat IS '0 for the best (highest S/N) spectrum of a star';
COMMENT ON COLUMN galah_star.teff IS 'GALAH effective temperature';
COMMENT ON COLUMN galah_star.e_teff IS 'Uncertainty of teff';
COMMENT ON COLUMN galah_star.logg IS 'GALAH surface gravity log g (cgs)';
COMMENT ON COLUMN galah_star.e_logg IS 'Uncertainty of logg';
COMMENT ON COLUMN galah_star.fe_h IS 'GALAH [Fe/H]';
COMMENT ON COLUMN galah_star.e_fe_h IS 'Uncertainty of fe_h';
COMMENT ON COLUMN galah_star.flag_sp IS 'Stellar-parameter quality bits (0 = good)';
COMMENT ON COLUMN galah_star.flag_fe_h IS '[Fe/H] quality flag (0 = good)';
COMMENT ON COLUMN galah_star.red_flag IS 'Reduction pipeline bits (0 = good)';
