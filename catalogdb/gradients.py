"""Metallicity gradients with the binning stored in the database (gradient_table), and the Fig. 14-style plot."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalogdb import paper

BINNINGS = ("radial", "vertical")  # rows of gradient_binning: Tables 3 and 4


def gradient_tables_on(conn: Connection, source: str) -> dict[str, list[dict]]:
    """Both gradient tables from `source` on an open connection (temporary tables are visible)."""
    return {name: [dict(row._mapping) for row in conn.execute(
        sa.text("select * from gradient_table(:binning, :source)"), {"binning": name, "source": source})]
            for name in BINNINGS}


def gradient_tables(engine: Engine, source: str = "gradient_sample") -> dict[str, list[dict]]:
    """Both gradient tables with the paper's binning, from `source` (feh, r_kpc, abs_z_kpc)."""
    with engine.connect() as conn:
        return gradient_tables_on(conn, source)


def plot_gradients(tables: dict[str, list[dict]], path: Path) -> None:
    """Fig. 14 style: slope against bin centre with errors, ours beside the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name, published, xlabel in ((axes[0], "radial", paper.RADIAL_GRADIENT, "|Z| (kpc)"),
                                    (axes[1], "vertical", paper.VERTICAL_GRADIENT, "R (kpc)")):
        rows = tables[name]
        nan = float("nan")  # a bin with fewer than 3 stars has no slope error (NULL)
        ax.errorbar([r["bin_center"] for r in rows], [nan if r["slope"] is None else r["slope"] for r in rows],
                    yerr=[nan if r["slope_err"] is None else r["slope_err"] for r in rows], fmt="o",
                    label="catalogdb")
        ax.plot(list(published), list(published.values()), "s--", mfc="none", label="Shen & Luo (2024)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"d[Fe/H]/d{'R' if name == 'radial' else '|Z|'} (dex/kpc)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
