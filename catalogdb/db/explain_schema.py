"""Tables of `catalogdb explain` (Sect. 5.1) and `catalogdb baselines` (Appendix C), declared like schema.py.

A module of its own so the core schema stays as it is; importing it adds the two tables to
`catalogdb.db.schema.metadata` (catalogdb/migrations/env.py and anything listing the tables should import it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from catalogdb.db.schema import F4, F8, col, metadata

feature_importance = sa.Table(
    "feature_importance",
    metadata,
    col("model_id", sa.Text, None, "meta.id", "CNN model explained (cnn_model.model_id)", primary_key=True),
    col("label", sa.Text, None, "meta.id", "Output label: teff, logg, feh, mg or bprp0", primary_key=True),
    col("grp", sa.Text, None, "meta.code",
        "Group of stars: hot/cool (Teff > / <= 5000 K), metal_rich/metal_poor ([Fe/H] >= / < 0) or all",
        primary_key=True),
    col("wavelength", sa.SmallInteger, "Angstrom", "em.wl", "Rest-frame vacuum wavelength of the pixel",
        primary_key=True),
    col("importance", F4, None, "stat.value",
        "Mean absolute Shapley value of the pixel over the group's stars, normalised to sum to 1 over the "
        "pixels of the (label, grp) curve", nullable=False),
    sa.ForeignKeyConstraint(["model_id"], ["cnn_model.model_id"], ondelete="CASCADE"),
    comment="CNN feature importance per wavelength pixel (Shapley values, Sect. 5.1 and Figs. 15-16 of Shen & Luo "
            "2024)",
)

baseline_model = sa.Table(
    "baseline_model",
    metadata,
    col("model_id", sa.Text, None, "meta.id", "CNN model whose training set and split were used", primary_key=True),
    col("name", sa.Text, None, "meta.id", "cnn, lightgbm, random_forest, knn or ridge", primary_key=True),
    col("params", JSONB, None, None, "Inputs, search grid, chosen hyper-parameters, CV score, timings",
        nullable=False),
    col("test_mse", JSONB, None, None, "Test-set MSE per label in physical units (K^2, dex^2, mag^2)",
        nullable=False),
    col("weighted_mse", F8, None, "stat.fit.residual",
        "Weighted mean MSE of Table C.1: mean over labels of MSE / variance of the label on the reference set"),
    col("created_at", sa.DateTime(timezone=True), None, "time.creation", "When the model was evaluated",
        nullable=False, server_default=sa.func.now()),
    sa.ForeignKeyConstraint(["model_id"], ["cnn_model.model_id"], ondelete="CASCADE"),
    comment="Baseline regressors on the CNN's training set and split, with test MSEs (Appendix C, Table C.1)",
)
