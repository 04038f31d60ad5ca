"""Feature importance (Sect. 5.1) and baseline models (Appendix C): tables feature_importance, baseline_model.

Declared in catalogdb/db/schema.py.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_importance",
        sa.Column("model_id", sa.Text(), nullable=False, comment="CNN model explained (cnn_model.model_id)"),
        sa.Column("label", sa.Text(), nullable=False, comment="Output label: teff, logg, feh, mg or bprp0"),
        sa.Column("grp", sa.Text(), nullable=False,
                  comment="Group of stars: hot/cool (Teff > / <= 5000 K), metal_rich/metal_poor ([Fe/H] >= / < 0) "
                          "or all"),
        sa.Column("wavelength", sa.SmallInteger(), nullable=False,
                  comment="Rest-frame vacuum wavelength of the pixel"),
        sa.Column("importance", sa.REAL(), nullable=False,
                  comment="Mean absolute Shapley value of the pixel over the group's stars, normalised to sum to 1 "
                          "over the pixels of the (label, grp) curve"),
        sa.ForeignKeyConstraint(["model_id"], ["cnn_model.model_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "label", "grp", "wavelength"),
        comment="CNN feature importance per wavelength pixel (Shapley values, Sect. 5.1 and Figs. 15-16 of Shen & "
                "Luo 2024)",
    )
    op.create_table(
        "baseline_model",
        sa.Column("model_id", sa.Text(), nullable=False,
                  comment="CNN model whose training set and split were used"),
        sa.Column("name", sa.Text(), nullable=False, comment="cnn, lightgbm, random_forest, knn or ridge"),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                  comment="Inputs, search grid, chosen hyper-parameters, CV score, timings"),
        sa.Column("test_mse", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                  comment="Test-set MSE per label in physical units (K^2, dex^2, mag^2)"),
        sa.Column("weighted_mse", sa.Double(), nullable=True,
                  comment="Weighted mean MSE of Table C.1: mean over labels of MSE / variance of the label on the "
                          "reference set"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False,
                  comment="When the model was evaluated"),
        sa.ForeignKeyConstraint(["model_id"], ["cnn_model.model_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "name"),
        comment="Baseline regressors on the CNN's training set and split, with test MSEs (Appendix C, Table C.1)",
    )


def downgrade() -> None:
    op.drop_table("baseline_model")
    op.drop_table("feature_importance")
