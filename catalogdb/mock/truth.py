"""Checks of a pipeline run on the mock survey against the truth written beside its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalogdb.gradients import BINNINGS, gradient_tables_on


def _load_truth(conn: Connection, survey: Path) -> None:
    """The true [Fe/H], R and Z (kpc) and distance (pc) of every mock star, as temporary table truth_star."""
    truth = pd.read_parquet(survey / "truth.parquet", columns=["uid", "feh", "r", "z", "distance_pc"])
    conn.execute(sa.text("create temp table truth_star (uid text primary key, feh float8, r_kpc float8, "
                         "z_kpc float8, distance_pc float8)"))
    cur = conn.connection.driver_connection.cursor()
    with cur.copy("copy truth_star from stdin") as copy:
        for row in truth.itertuples(index=False):
            copy.write_row((row.uid, row.feh, row.r, row.z, row.distance_pc))


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


def _fit(row: dict | None) -> dict | None:
    return None if row is None else {"slope": row["slope"], "slope_err": row["slope_err"], "n": row["n"]}


def gradients_against_truth(engine: Engine, survey: Path, feh_response: float | None = None) -> dict[str, list[dict]]:
    """Per gradient bin, the CNN slope against the same stars' truth: ratio and difference in sigma.

    - "truth": the fit of the true [Fe/H] of the final_catalog stars at their true R and |Z|, the slope
      this sample should measure (the mock's field curves in |Z|, so it differs from the injected one);
    - "cnn": final_catalog's own fit (gradient_sample: CNN [Fe/H] at CNN distances);
    - "cnn_true_position": CNN [Fe/H] at the true R and |Z|, so cnn - cnn_true_position is the distances' part;
    - "injected": the mock's field, for reference;
    - "expected_ratio": the test-set [Fe/H] response, when given: a CNN that shrinks [Fe/H] toward the
      mean by that factor flattens every gradient by it too, so a ratio near it is honest attenuation.
    "sigma" is (cnn - truth) / sqrt(err_cnn^2 + err_truth^2).
    """
    injected = json.loads((survey / "truth.json").read_text())["gradients"]
    with engine.connect() as conn:
        _load_truth(conn, survey)
        for name, feh in (("truth_sample", "t.feh"), ("cnn_true_position_sample", "f.cnn_feh")):
            conn.execute(sa.text(
                f"create temp view {name} as select f.obsid, {feh} as feh, t.r_kpc, abs(t.z_kpc) as abs_z_kpc "
                "from final_catalog f join lamost_star l using (obsid) join truth_star t on t.uid = l.uid "
                "where f.cnn_feh is not null"))
        fits = {source: gradient_tables_on(conn, source)
                for source in ("truth_sample", "cnn_true_position_sample", "gradient_sample")}
        conn.rollback()
    out: dict[str, list[dict]] = {}
    for name in BINNINGS:
        by_bin = {round(b["abs_z_kpc" if name == "radial" else "r_kpc"], 2): b for b in injected[name]}
        tables = {source: {round(r["bin_center"], 2): r for r in rows[name]} for source, rows in fits.items()}
        rows = []
        for centre, ours in tables["gradient_sample"].items():
            truth = tables["truth_sample"].get(centre)
            ratio = sigma = None
            if truth and truth["slope"] and ours["slope"] is not None:
                ratio = ours["slope"] / truth["slope"]
                if ours["slope_err"] and truth["slope_err"]:
                    sigma = (ours["slope"] - truth["slope"]) / float(np.hypot(ours["slope_err"], truth["slope_err"]))
            rows.append({"bin_center": centre, "injected": by_bin.get(centre, {}).get("injected_slope"),
                         "truth": _fit(truth), "cnn": _fit(ours),
                         "cnn_true_position": _fit(tables["cnn_true_position_sample"].get(centre)),
                         "ratio": ratio, "sigma": sigma, "expected_ratio": feh_response})
        out[name] = rows
    return out
