"""Survey-catalogue ingest, one module per job.

spec      what the loader reads of a source, from its declaration (catalogdb/sources/<source>.toml)
files     the driver: ingest_files, one transaction per call, the run row, ingested_file rows
validate  a file's columns against the spec (presence, shape, units), then each chunk's values
units     unit matching and scaling with astropy.units
rejects   bad rows: an error naming file, row and column (abort), or <file>.rejects.csv (skip)
copy      PostgreSQL binary COPY: the numpy encoder and the writer (fed by a catalogdb.pipeline)
merge     staging table, repeated keys, INSERT ... ON CONFLICT merge
"""
