"""The database: server, schema, q3c layer and migrations."""
