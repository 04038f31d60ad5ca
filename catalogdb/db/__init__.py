"""The database: server, schema, q3c layer and migrations."""

from catalogdb.db import (
    comparison_schema,  # noqa: F401 - registers the comparison tables on schema.metadata
    explain_schema,  # noqa: F401, E402 - registers feature_importance and baseline_model
)
