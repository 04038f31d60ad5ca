"""Metallicity gradients read from the gradient views, the paper's values, and the Fig. 14-style plot."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# Tables 3 and 4 of Shen & Luo (2024): slope (dex/kpc) by bin centre (kpc).
PAPER_RADIAL = dict(zip([0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9],
                        [-0.054, -0.040, -0.030, -0.022, -0.011, 0.000, 0.003, 0.004, 0.005, 0.008], strict=True))
PAPER_VERTICAL = dict(zip([7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5],
                          [-0.263, -0.237, -0.163, -0.098, -0.078, -0.065, -0.069], strict=True))


QUERIES = {
    "radial": "select * from metallicity_gradient('r_kpc', 'abs_z_kpc', 0, 2, 0.2, 7, 14, :source)",
    "vertical": "select * from metallicity_gradient('abs_z_kpc', 'r_kpc', 7, 14, 1, 0, 2, :source)",
}


def _tables(conn: Connection, source: str) -> dict[str, list[dict]]:
    return {name: [dict(row._mapping) for row in conn.execute(sa.text(sql), {"source": source})]
            for name, sql in QUERIES.items()}


def gradient_tables(engine: Engine, source: str = "gradient_sample") -> dict[str, list[dict]]:
    """Both gradient tables with the paper's binning, from `source` (feh, r_kpc, abs_z_kpc)."""
    with engine.connect() as conn:
        return _tables(conn, source)


def compare_with_truth(engine: Engine, survey: Path) -> dict[str, list[dict]]:
    """Per bin: the mock's injected slope and that of its true values, then ours at true and CNN distances.

    "true_feh_and_distance" is the mock's own fit to the true [Fe/H], R and |Z| of its solar-like stars
    (truth.json); ours use the CNN [Fe/H] of final_catalog, placed at the true R and |Z| (truth.parquet)
    or at the CNN distance, so the last two differ only by the distance errors.
    """
    import pandas as pd

    truth = pd.read_parquet(survey / "truth.parquet", columns=["uid", "r", "z"])
    injected = json.loads((survey / "truth.json").read_text())["gradients"]
    with engine.connect() as conn:
        conn.execute(sa.text("create temp table truth_star (uid text primary key, r_kpc float8, z_kpc float8)"))
        cur = conn.connection.driver_connection.cursor()
        with cur.copy("copy truth_star from stdin") as copy:
            for row in truth.itertuples(index=False):
                copy.write_row((row.uid, row.r, row.z))
        conn.execute(sa.text(
            "create temp view true_distance_sample as select f.obsid, f.cnn_feh as feh, t.r_kpc, "
            "abs(t.z_kpc) as abs_z_kpc from final_catalog f join lamost_star l using (obsid) "
            "join truth_star t on t.uid = l.uid where f.cnn_feh is not null"))
        true_d, cnn_d = _tables(conn, "true_distance_sample"), _tables(conn, "gradient_sample")
        conn.rollback()
    out: dict[str, list[dict]] = {}
    for name in QUERIES:
        by_bin = {round(b["abs_z_kpc" if name == "radial" else "r_kpc"], 2): b for b in injected[name]}
        rows = []
        for ours in cnn_d[name]:
            centre = round(ours["bin_center"], 2)
            true_row = next((r for r in true_d[name] if round(r["bin_center"], 2) == centre), None)
            inj = by_bin.get(centre, {}).get("injected_slope")
            sample = by_bin.get(centre, {}).get("truth_sample") or {}
            rows.append({"bin_center": centre, "injected": inj, "true_feh_and_distance": sample.get("slope"),
                         "true_distance": true_row and (true_row["slope"], true_row["slope_err"], true_row["n"]),
                         "cnn_distance": (ours["slope"], ours["slope_err"], ours["n"]),
                         "sigma_off": None if inj is None or not ours["slope_err"]
                         else (ours["slope"] - inj) / ours["slope_err"]})
        out[name] = rows
    return out


def plot_gradients(tables: dict[str, list[dict]], path: Path) -> None:
    """Fig. 14 style: slope against bin centre with errors, ours beside the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name, paper, xlabel in ((axes[0], "radial", PAPER_RADIAL, "|Z| (kpc)"),
                                    (axes[1], "vertical", PAPER_VERTICAL, "R (kpc)")):
        rows = tables[name]
        ax.errorbar([r["bin_center"] for r in rows], [r["slope"] for r in rows],
                    yerr=[r["slope_err"] for r in rows], fmt="o", label="catalogdb")
        ax.plot(list(paper), list(paper.values()), "s--", mfc="none", label="Shen & Luo (2024)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"d[Fe/H]/d{'R' if name == 'radial' else '|Z|'} (dex/kpc)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
