"""Checks of a pipeline run on the mock survey against the truth written beside its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalogdb.gradients import QUERIES, gradient_tables_on


def _load_truth(conn: Connection, survey: Path) -> None:
    """The true R and Z (kpc) and distance (pc) of every mock star, as temporary table truth_star."""
    truth = pd.read_parquet(survey / "truth.parquet", columns=["uid", "r", "z", "distance_pc"])
    conn.execute(sa.text("create temp table truth_star (uid text primary key, r_kpc float8, z_kpc float8, "
                         "distance_pc float8)"))
    cur = conn.connection.driver_connection.cursor()
    with cur.copy("copy truth_star from stdin") as copy:
        for row in truth.itertuples(index=False):
            copy.write_row((row.uid, row.r, row.z, row.distance_pc))


def distances_against_truth(engine: Engine, survey: Path) -> dict:
    """Fractional error of final_catalog's cnn_distance against the true distance (median, std), as Sect. 4.2."""
    with engine.connect() as conn:
        _load_truth(conn, survey)
        rows = conn.execute(sa.text(
            "select f.cnn_distance, t.distance_pc, f.distance_p16, f.distance_p84 from final_catalog f "
            "join lamost_star l using (obsid) join truth_star t on t.uid = l.uid "
            "where f.cnn_distance is not null")).all()
        conn.rollback()
    d, true, p16, p84 = (np.array(c, dtype=float) for c in zip(*rows, strict=True)) if rows else ([],) * 4
    frac = (d - true) / true
    return {"n": len(rows), "frac_median": float(np.median(frac)) if rows else None,
            "frac_std": float(np.std(frac)) if rows else None,
            "within_p16_p84": float(np.mean((true >= p16) & (true <= p84))) if rows else None}


def gradients_against_truth(engine: Engine, survey: Path) -> dict[str, list[dict]]:
    """Per bin: the mock's injected slope and that of its true values, then ours at true and CNN distances.

    "true_feh_and_distance" is the mock's own fit to the true [Fe/H], R and |Z| of its solar-like stars
    (truth.json); ours use the CNN [Fe/H] of final_catalog, placed at the true R and |Z| (truth.parquet)
    or at the CNN distance, so the last two differ only by the distance errors.
    """
    injected = json.loads((survey / "truth.json").read_text())["gradients"]
    with engine.connect() as conn:
        _load_truth(conn, survey)
        conn.execute(sa.text(
            "create temp view true_distance_sample as select f.obsid, f.cnn_feh as feh, t.r_kpc, "
            "abs(t.z_kpc) as abs_z_kpc from final_catalog f join lamost_star l using (obsid) "
            "join truth_star t on t.uid = l.uid where f.cnn_feh is not null"))
        true_d, cnn_d = gradient_tables_on(conn, "true_distance_sample"), gradient_tables_on(conn, "gradient_sample")
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
