"""`catalogdb report`: the paper's figures as PNG files and one HTML page, every number from the database.

Figures (Shen & Luo 2024): 1 Kiel diagram with the solar-like region, 5 CNN against labels on the test
set (catalogdb.cnn.plots), 8 the targets by reason, 9 colour-magnitude diagram of the predictions,
10 distances against StarHorse / DistMass / astroNN, 11 parameters against APOGEE DR17 / GALAH DR3,
12-13 maps in X-Y and R-Z, 14 the metallicity gradients (catalogdb.gradients). Densities are binned in
SQL, so a figure costs the same at 7 million spectra as at a thousand. The page's tables read the views
training_cutflow, target_venn, compare_distance, compare_parameters, gradient_radial, gradient_vertical
and the model registry; the paper's values stand beside them for reference.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalogdb import paper
from catalogdb.gradients import plot_gradients

LABEL_NAMES = {"teff": "T<sub>eff</sub> (K)", "logg": "log g (dex)", "feh": "[Fe/H] (dex)", "mg": "M<sub>G</sub> (mag)",
               "bprp0": "(BP-RP)<sub>0</sub> (mag)"}
AXIS = {"teff": r"$T_{\rm eff}$ [K]", "logg": r"$\log g$ [dex]", "feh": "[Fe/H] [dex]"}


@dataclass
class Figure:
    """One figure of the report: its file, the paper's figure number and a caption."""

    path: Path | None
    number: str
    caption: str


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rows(conn: Connection, sql: str, **params) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def _exists(conn: Connection, relation: str) -> bool:
    return conn.execute(sa.text("select to_regclass(:r) is not null"), {"r": relation}).scalar()


# --- binning in SQL -------------------------------------------------------------------------------------

def _range(conn: Connection, source: str, expr: str, lo: float = 0.005, hi: float = 0.995) -> tuple[float, float]:
    """The [lo, hi] quantiles of expr over source, widened a little."""
    a, b = conn.execute(sa.text(
        f"select percentile_cont(:lo) within group (order by {expr}), "
        f"percentile_cont(:hi) within group (order by {expr}) from {source} where {expr} is not null"),
        {"lo": lo, "hi": hi}).one()
    if a is None:
        return 0.0, 1.0
    pad = 0.05 * ((b - a) or 1.0)
    return float(a) - pad, float(b) + pad


def hist2d(conn: Connection, source: str, x: str, y: str, xr: tuple[float, float], yr: tuple[float, float],
           bins: tuple[int, int] = (120, 120), value: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Counts (and the mean of `value`) on a bins[0] x bins[1] grid over xr x yr, binned by the database."""
    nx, ny = bins
    sql = f"""
        select least(floor(({x} - :x0) / :dx), :nx - 1)::int as i, least(floor(({y} - :y0) / :dy), :ny - 1)::int as j,
               count(*) as n {', avg(' + value + ') as v' if value else ''}
        from {source}
        where {x} >= :x0 and {x} <= :x1 and {y} >= :y0 and {y} <= :y1 {'and ' + value + ' is not null' if value else ''}
        group by 1, 2"""
    params = {"x0": xr[0], "x1": xr[1], "dx": (xr[1] - xr[0]) / nx, "nx": nx,
              "y0": yr[0], "y1": yr[1], "dy": (yr[1] - yr[0]) / ny, "ny": ny}
    counts = np.zeros((nx, ny))
    mean = np.full((nx, ny), np.nan) if value else None
    for row in conn.execute(sa.text(sql), params):
        counts[row.i, row.j] = row.n
        if mean is not None:
            mean[row.i, row.j] = row.v
    return counts, mean


def _density(ax, counts: np.ndarray, xr, yr, cmap: str = "viridis", label: str = "N"):
    from matplotlib.colors import LogNorm

    masked = np.ma.masked_where(counts.T <= 0, counts.T)
    vmax = max(float(counts.max()), 1.0)
    im = ax.imshow(masked, origin="lower", extent=(*xr, *yr), aspect="auto", cmap=cmap,
                   norm=LogNorm(vmin=1, vmax=max(vmax, 1.01)), interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label=label)
    return im


# --- figures ----------------------------------------------------------------------------------------------

def fig1_kiel(conn: Connection, path: Path) -> Path:
    """Fig. 1: LASP Teff against log g of the LAMOST catalogue, with the solar-like region (Table 1)."""
    plt = _plt()
    xr, yr = (3500.0, 8000.0), (0.0, 5.5)
    counts, _ = hist2d(conn, "lamost_star", "teff", "logg", xr, yr, (150, 110))
    fig, ax = plt.subplots(figsize=(6.5, 5))
    _density(ax, counts, xr, yr)
    teff = np.array([4800.0, 6800.0])
    line = 5.98 - 0.00035 * teff
    ax.plot(teff, line, "r-", lw=1.5, label=r"$\log g = 5.98 - 0.00035\,T_{\rm eff}$")
    ax.plot([4800, 4800], [line[0], yr[1]], "r-", lw=1.5)
    ax.plot([6800, 6800], [line[1], yr[1]], "r-", lw=1.5)
    ax.set_xlim(xr[1], xr[0])
    ax.set_ylim(yr[1], yr[0])
    ax.set_xlabel(r"LASP $T_{\rm eff}$ [K]")
    ax.set_ylabel(r"LASP $\log g$ [dex]")
    ax.set_title("LAMOST DR9 LRS: Kiel diagram and the solar-like region")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig5_model(conn: Connection, model: dict | None, path: Path) -> Path | None:
    """Fig. 5 of the model behind final_catalog, redrawn from its saved test-set predictions."""
    from catalogdb.cnn.plots import fig5

    if model is None:
        return None
    npz = Path(model["path"]) / "test_predictions.npz"
    if not npz.exists():
        return None
    with np.load(npz) as d:
        return fig5(path, d["label"], d["pred"], d["d_cnn"], d["r_med_geo"], model["metrics"], model["model_id"])


def _venn_regions(venn: list[dict]) -> dict[tuple[bool, bool, bool], int]:
    out: dict[tuple[bool, bool, bool], int] = {}
    for r in venn:
        key = (bool(r["no_parallax"]), bool(r["low_parallax_over_error"]), bool(r["no_gspphot_distance"]))
        out[key] = out.get(key, 0) + int(r["count"])
    return out


def fig8_venn(venn: list[dict], path: Path) -> Path:
    """Fig. 8: the targets by reason as a three-set Venn diagram (counts from target_venn)."""
    from matplotlib.patches import Circle

    plt = _plt()
    regions = _venn_regions(venn)
    fig, ax = plt.subplots(figsize=(7, 5.5))
    # "no parallax" and "parallax_over_error <= 5" cannot overlap; "no GSP-Phot distance" meets both.
    circles = [((-1.15, 0.35), 1.0, "tab:blue", "no parallax"),
               ((1.15, 0.35), 1.0, "tab:orange", "parallax_over_error <= 5"),
               ((0.0, -0.75), 1.25, "tab:green", "no GSP-Phot distance")]
    totals = [sum(n for k, n in regions.items() if k[i]) for i in range(3)]
    for (centre, radius, colour, label), total in zip(circles, totals, strict=True):
        ax.add_patch(Circle(centre, radius, color=colour, alpha=0.3, lw=1.5))
        ax.add_patch(Circle(centre, radius, fill=False, ec=colour, lw=1.5))
        y = centre[1] + radius + 0.12 if centre[1] > 0 else centre[1] - radius - 0.2
        ax.text(centre[0], y, f"{label}\n{total:,}", ha="center", va="center", fontsize=10, color=colour)
    spots = {(True, False, False): (-1.45, 0.7), (False, True, False): (1.45, 0.7), (False, False, True): (0.0, -1.35),
             (True, False, True): (-0.62, -0.2), (False, True, True): (0.62, -0.2), (True, True, False): (0.0, 0.9),
             (True, True, True): (0.0, 0.2)}
    for key, (x, y) in spots.items():
        n = regions.get(key, 0)
        if n or key[0] != key[1] or not key[0]:  # impossible regions only when the view has rows there
            ax.text(x, y, f"{n:,}", ha="center", va="center", fontsize=12, weight="bold")
    ax.set_xlim(-2.5, 2.5)
    ax.set_ylim(-2.5, 2.0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"Targets by reason (Sect. 4.1): {sum(regions.values()):,} spectra")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig9_cmd(conn: Connection, path: Path) -> Path:
    """Fig. 9: colour-magnitude diagram of the predictions, (BP-RP)_0 against M_G."""
    plt = _plt()
    xr = _range(conn, "final_catalog", "cnn_bprp")
    yr = _range(conn, "final_catalog", "cnn_mg")
    counts, _ = hist2d(conn, "final_catalog", "cnn_bprp", "cnn_mg", xr, yr, (100, 100))
    fig, ax = plt.subplots(figsize=(6, 5.5))
    _density(ax, counts, xr, yr)
    ax.set_ylim(yr[1], yr[0])
    ax.set_xlabel(r"CNN $(BP-RP)_0$ [mag]")
    ax.set_ylabel(r"CNN $M_G$ [mag]")
    ax.set_title(f"Colour-magnitude diagram of the predictions (N = {int(counts.sum()):,})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _compare_panel(ax, x: np.ndarray, y: np.ndarray, stats: dict | None, xlabel: str, ylabel: str,
                   unit: str, frac: bool) -> None:
    from matplotlib.colors import LogNorm

    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x):
        # each point coloured by the number density around it, as the paper's panels
        h, ex, ey = np.histogram2d(x, y, bins=40)
        i = np.clip(np.searchsorted(ex, x, side="right") - 1, 0, 39)
        j = np.clip(np.searchsorted(ey, y, side="right") - 1, 0, 39)
        c = h[i, j]
        order = np.argsort(c)
        ax.scatter(x[order], y[order], c=c[order], s=5, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(c.max(), 2)),
                   linewidths=0)
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        lo, hi = lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)  # one scale on both axes, as the paper's panels
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        sigma = stats and stats.get("scatter")
        if sigma:
            ax.plot([lo, hi], [lo - sigma, hi - sigma], color="0.5", ls="--", lw=0.8)
            ax.plot([lo, hi], [lo + sigma, hi + sigma], color="0.5", ls="--", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if stats:
        text = f"N = {stats['n']:,}\n$\\mu$ = {_num(stats['bias'])}{unit}\n$\\sigma$ = {_num(stats['scatter'])}{unit}"
        if frac:
            text += f"\nfrac: {_pct(stats.get('mean_frac'))} $\\pm$ {_pct(stats.get('std_frac'), signed=False)}"
        ax.text(0.04, 0.96, text, transform=ax.transAxes, va="top", fontsize=8,
                bbox={"fc": "white", "alpha": 0.7, "lw": 0})


def fig10_distances(conn: Connection, stats: list[dict], path: Path) -> Path:
    """Fig. 10: distances against StarHorse, DistMass, astroNN (top) and those pairwise (bottom)."""
    plt = _plt()
    star = _rows(conn, "select cnn_distance, starhorse, distmass, astronn from compare_distance_star")
    arrays = {k: np.array([np.nan if r[v] is None else float(r[v]) for r in star], dtype=float)
              for k, v in DISTANCE_COLUMNS.items()}
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5), layout="constrained")
    for ax in axes.flat:
        ax.set_axis_off()
    for s in stats:
        ax = axes.flat[int(s["panel"]) - 1]
        ax.set_axis_on()
        x, y = s["catalogue"], s["reference"]
        _compare_panel(ax, arrays[x], arrays[y], {"n": s["n"], "bias": s["mean_diff"], "scatter": s["std_diff"],
                                                  "mean_frac": s["mean_frac"], "std_frac": s["std_frac"]},
                       f"{x} distance [pc]", f"{y} distance [pc]", " pc", frac=True)
    fig.suptitle("Distances against StarHorse, DistMass and astroNN (bias = x - y, fraction = (x - y) / y)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig11_parameters(conn: Connection, stats: list[dict], path: Path) -> Path:
    """Fig. 11: CNN Teff, log g, [Fe/H] against APOGEE DR17 (top) and GALAH DR3 (bottom) after the cuts."""
    plt = _plt()
    star = _rows(conn, "select survey, cnn_teff, cnn_logg, cnn_feh, teff, logg, feh from compare_parameters_star")
    by = {(s["survey"], s["parameter"]): s for s in stats}
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5), layout="constrained")
    for i, survey in enumerate(SURVEYS):
        rows = [r for r in star if r["survey"] == survey]
        for j, name in enumerate(AXIS):
            cnn = np.array([np.nan if r[f"cnn_{name}"] is None else r[f"cnn_{name}"] for r in rows], dtype=float)
            ref = np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)
            s = by.get((survey, name))
            unit = " K" if name == "teff" else " dex"
            _compare_panel(axes[i, j], cnn, ref, s and {"n": s["n"], "bias": s["bias"], "scatter": s["scatter"]},
                           f"CNN {AXIS[name]}", f"{survey} {AXIS[name]}", unit, frac=False)
    fig.suptitle("Stellar parameters against APOGEE DR17 and GALAH DR3 (bias = CNN - survey)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _maps(conn: Connection, path: Path, x: str, y: str, xlabel: str, ylabel: str, title: str) -> Path:
    plt = _plt()
    source = "(select x / 1000.0 as gx, y / 1000.0 as gy, z / 1000.0 as gz, r / 1000.0 as gr, cnn_feh " \
             "from final_catalog) f"
    xr, yr = _range(conn, source, x), _range(conn, source, y)
    counts, mean = hist2d(conn, source, x, y, xr, yr, (80, 80), value="cnn_feh")
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    _density(axes[0], counts, xr, yr)
    masked = np.ma.masked_invalid(mean.T)
    im = axes[1].imshow(masked, origin="lower", extent=(*xr, *yr), aspect="auto", cmap="RdYlBu_r",
                        vmin=-0.6, vmax=0.3, interpolation="nearest")
    fig.colorbar(im, ax=axes[1], label="mean CNN [Fe/H] [dex]")
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    axes[0].set_title("number of spectra")
    axes[1].set_title("mean [Fe/H]")
    fig.suptitle(f"{title} (N = {int(counts.sum()):,})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig12_xy(conn: Connection, path: Path) -> Path:
    """Fig. 12: the predictions in galactocentric X-Y: density and mean [Fe/H]."""
    return _maps(conn, path, "gx", "gy", "X [kpc]", "Y [kpc]", "Galactocentric X-Y")


def fig13_rz(conn: Connection, path: Path) -> Path:
    """Fig. 13: the predictions in galactocentric R-Z: density and mean [Fe/H]."""
    return _maps(conn, path, "gr", "gz", "R [kpc]", "Z [kpc]", "Galactocentric R-Z")


def fig14(gradients: dict[str, list[dict]], path: Path) -> Path:
    """Fig. 14: the gradient views beside the paper's slopes (catalogdb.gradients.plot_gradients)."""
    plot_gradients({name: [{"bin_center": r["bin_center"], "slope": r["slope"], "slope_err": r["slope_err"]}
                           for r in rows if r["slope"] is not None] for name, rows in gradients.items()}, path)
    return path


# --- numbers ------------------------------------------------------------------------------------------------

DISTANCE_COLUMNS = {"this work": "cnn_distance", "StarHorse": "starhorse", "DistMass": "distmass",
                    "astroNN": "astronn"}
SURVEYS = ("APOGEE DR17", "GALAH DR3")


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    v = float(v)
    if v != 0 and (abs(v) >= 1000 or abs(v) < 1e-3):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.2e}"
    return f"{v:.{digits}g}"


def _pct(v, signed: bool = True) -> str:
    return "n/a" if v is None else f"{100 * float(v):{'+' if signed else ''}.1f}%"


def _fixed(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{float(v):.{digits}f}"


def gather(engine: Engine) -> dict:
    """Everything the page shows, read from the views and the model registry."""
    with engine.connect() as conn:
        out: dict = {
            "cutflow": _rows(conn, "select stage, description, count from training_cutflow order by stage"),
            "venn": _rows(conn, "select * from target_venn"),
            "targets": conn.execute(sa.text("select count(*) from targets")).scalar(),
            "final": _rows(conn, "select count(*) as n, count(cnn_distance) as n_distance, count(r) as n_xyz, "
                                 "min(model_id) as model_id from final_catalog")[0],
            "gradients": {
                "radial": _rows(conn, "select abs_z as bin_center, slope, slope_err, intercept, intercept_err, n "
                                      "from gradient_radial order by abs_z"),
                "vertical": _rows(conn, "select r as bin_center, slope, slope_err, intercept, intercept_err, n "
                                        "from gradient_vertical order by r"),
            },
            "has_comparisons": _exists(conn, "compare_distance"),
        }
        if out["has_comparisons"]:
            out["distance"] = _rows(conn, "select * from compare_distance order by panel")
            out["parameters"] = _rows(conn, "select * from compare_parameters")
        else:
            out["distance"], out["parameters"] = [], []
        model_id = out["final"]["model_id"]
        sql = ("select model_id, created_at, path, training_rows, metrics, sigma_mg from cnn_model "
               + ("where model_id = :m" if model_id else "order by created_at desc limit 1"))
        row = conn.execute(sa.text(sql), {"m": model_id} if model_id else {}).first()
        out["model"] = None if row is None else dict(row._mapping)
        if out["model"] and isinstance(out["model"]["metrics"], str):
            out["model"]["metrics"] = json.loads(out["model"]["metrics"])
    return out


# --- the page -------------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; padding: 0 1.5em; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f3f7; } td.l, th.l { text-align: left; }
td.paper { color: #666; font-style: italic; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.note { color: #a33; }
"""


def _table(headers: list[str], rows: list[list], left: int = 1, paper_cols: tuple[int, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = "l" if i < left else ("paper" if i in paper_cols else "")
            text = v if isinstance(v, str) else _num(v)
            cells.append(f'<td class="{cls}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _esc(v) -> str:
    return html.escape(str(v))


def render_html(data: dict, figures: list[Figure]) -> str:
    """The report page: tables from `data` (gather) and the figures."""
    final = data["final"]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>catalogdb report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>catalogdb report: solar-like stars from LAMOST (Shen &amp; Luo 2024)</h1>",
             f"<p>final_catalog: <b>{final['n']:,}</b> spectra, {final['n_distance']:,} with a CNN distance, "
             f"{final['n_xyz']:,} with X, Y, Z, R; model <code>{_esc(final['model_id'] or 'none')}</code>; "
             f"targets view: {data['targets']:,} spectra (paper: {paper.TARGETS:,}). Every number below is read "
             "from the database views; the paper's values are in <i>italics</i>.</p>"]

    parts.append("<h2>Training cut-flow (Table 2)</h2>")
    parts.append(_table(["stage", "selection", "count", "paper"],
                        [[str(r["stage"]), _esc(r["description"]), f"{r['count']:,}",
                          f"{paper.CUTFLOW[r['stage']]:,}" if r["stage"] in paper.CUTFLOW else ""]
                         for r in data["cutflow"]], left=2, paper_cols=(3,)))

    parts.append("<h2>Targets by reason (Sect. 4.1, Fig. 8)</h2>")
    regions = _venn_regions(data["venn"])
    names = ("no parallax", "parallax_over_error <= 5", "no GSP-Phot distance")
    rows = [[" and ".join(n for n, k in zip(names, key, strict=True) if k) or "none", f"{n:,}"]
            for key, n in sorted(regions.items(), key=lambda kv: -kv[1])]
    parts.append(_table(["reasons", "spectra"], rows))
    totals = [[name, f"{sum(n for k, n in regions.items() if k[i]):,}", f"{paper.TARGET_VENN[name]:,}"]
              for i, name in enumerate(names)]
    parts.append(_table(["reason (all spectra with it)", "spectra", "paper"], totals, paper_cols=(2,)))

    parts.append("<h2>CNN model: test-set metrics (Sect. 3, Fig. 5)</h2>")
    model = data["model"]
    if model:
        m = model["metrics"]
        parts.append(f"<p>model <code>{_esc(model['model_id'])}</code>, {model['training_rows']:,} training rows "
                     f"({m.get('n_reference', 'n/a')} reference, {m.get('n_test', 'n/a')} test); "
                     f"&sigma;<sub>M</sub> = {_num(model['sigma_mg'])} mag.</p>")
        rows = [[LABEL_NAMES[k], v.get("bias"), v.get("scatter"), v.get("mse"), paper.TEST_SCATTER.get(k)]
                for k, v in m.get("labels", {}).items()]
        parts.append(_table(["label", "bias", "scatter", "MSE", "paper scatter"], rows, paper_cols=(4,)))
        dist = m.get("distance", {})
        parts.append(_table(
            ["distance vs r_med_geo", "value", "paper"],
            [["median fractional error", _pct(dist.get("frac_median")), f"{paper.DISTANCE_MEDIAN_FRACTION:.1%}"],
             ["std of fractional error", _pct(dist.get("frac_std"), signed=False),
              f"{paper.DISTANCE_STD_FRACTION:.1%}"],
             ["scatter (pc)", dist.get("scatter_pc"), str(paper.DISTANCE_SCATTER_PC)]], paper_cols=(2,)))
    else:
        parts.append("<p class='note'>No model in the registry.</p>")

    parts.append("<h2>Distances against other catalogues (Sect. 4.2, Fig. 10)</h2>")
    if data["distance"]:
        rows = []
        for r in data["distance"]:
            p = paper.DISTANCE_COMPARISON.get(r["panel"], (None, None, None))
            rows.append([f"{_esc(r['catalogue'])} &minus; {_esc(r['reference'])}", f"{r['n']:,}", r["mean_diff"],
                         r["std_diff"], _pct(r["mean_frac"]), _pct(r["std_frac"], signed=False),
                         f"{p[0]:,}" if p[0] else "", f"{p[1]}" if p[1] else "",
                         _pct(p[2]) if p[2] is not None else ""])
        parts.append(_table(["x &minus; y", "N", "mean (pc)", "std (pc)", "mean fraction", "std fraction",
                             "paper N", "paper std (pc)", "paper mean fraction"], rows, paper_cols=(6, 7, 8)))
    else:
        parts.append("<p class='note'>No comparison catalogue ingested (starhorse, distmass, astronn).</p>")

    parts.append("<h2>Stellar parameters against APOGEE DR17 and GALAH DR3 (Sect. 4.3, Fig. 11)</h2>")
    if data["parameters"]:
        rows = [[_esc(r["survey"]), LABEL_NAMES.get(r["parameter"], r["parameter"]), f"{r['n']:,}", r["bias"],
                 r["scatter"], f"{paper.PARAMETER_COMPARISON_N.get(r['survey'], 0):,}",
                 _num(paper.PARAMETER_COMPARISON.get((r["survey"], r["parameter"])))] for r in data["parameters"]]
        parts.append(_table(["survey", "parameter", "N", "bias (CNN &minus; survey)", "scatter", "paper N",
                             "paper scatter"], rows, left=2, paper_cols=(5, 6)))
    else:
        parts.append("<p class='note'>No spectra pass the comparison cuts (or GALAH DR3 is not ingested).</p>")

    parts.append("<h2>Metallicity gradients (Sect. 4.4, Tables 3 and 4)</h2>")
    for name, key, published, unit in (("radial", "|Z| (kpc)", paper.RADIAL_GRADIENT, "d[Fe/H]/dR"),
                                       ("vertical", "R (kpc)", paper.VERTICAL_GRADIENT, "d[Fe/H]/d|Z|")):
        rows = [[f"{r['bin_center']:.1f}", _fixed(r["slope"]), _fixed(r["slope_err"]), _fixed(r["intercept"], 3),
                 _fixed(r["intercept_err"], 3), f"{r['n']:,}", _fixed(published.get(round(r["bin_center"], 1)), 3)]
                for r in data["gradients"][name]]
        parts.append(f"<h3>{name.capitalize()} gradient, {unit} (dex/kpc)</h3>")
        parts.append(_table([key, "slope", "error", "intercept", "error", "N", "paper slope"], rows,
                            paper_cols=(6,)))

    parts.append("<h2>Figures</h2>")
    for f in figures:
        if f.path is None:
            parts.append(f"<p class='note'>Fig. {f.number}: {_esc(f.caption)} (not drawn: no data)</p>")
            continue
        parts.append(f"<figure id='fig{f.number}'><img src='{_esc(f.path.name)}' alt='Fig. {f.number}'>"
                     f"<figcaption><b>Fig. {f.number}.</b> {_esc(f.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(engine: Engine, out: Path) -> list[Path]:
    """Write the paper's figures (PNG) and index.html into `out`; return the files written, page last."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = gather(engine)
    figures: list[Figure] = []
    with engine.connect() as conn:
        figures.append(Figure(fig1_kiel(conn, out / "fig01_kiel.png"), "1",
                              "Kiel diagram of the LAMOST catalogue (LASP parameters) with the solar-like region "
                              "of Table 1"))
        figures.append(Figure(fig5_model(conn, data["model"], out / "fig05_cnn_test.png"), "5",
                              "CNN predictions against the labels of the test set, and the CNN distance against "
                              "Bailer-Jones r_med_geo"))
        figures.append(Figure(fig8_venn(data["venn"], out / "fig08_targets_venn.png"), "8",
                              "The targets by reason: no parallax, parallax_over_error <= 5, no GSP-Phot distance"))
        figures.append(Figure(fig9_cmd(conn, out / "fig09_cmd.png"), "9",
                              "Colour-magnitude diagram of the CNN predictions"))
        if data["has_comparisons"]:
            figures.append(Figure(fig10_distances(conn, data["distance"], out / "fig10_distances.png"), "10",
                                  "CNN distances against StarHorse, DistMass and astroNN, and those pairwise"))
            figures.append(Figure(fig11_parameters(conn, data["parameters"], out / "fig11_parameters.png"), "11",
                                  "CNN Teff, log g, [Fe/H] against APOGEE DR17 and GALAH DR3 after the quality cuts"))
        figures.append(Figure(fig12_xy(conn, out / "fig12_xy.png"), "12",
                              "The predictions in galactocentric X-Y: number and mean [Fe/H]"))
        figures.append(Figure(fig13_rz(conn, out / "fig13_rz.png"), "13",
                              "The predictions in galactocentric R-Z: number and mean [Fe/H]"))
    figures.append(Figure(fig14(data["gradients"], out / "fig14_gradients.png"), "14",
                          "Radial and vertical [Fe/H] gradients (gradient_radial, gradient_vertical) beside the "
                          "paper's"))
    page = out / "index.html"
    page.write_text(render_html(data, figures), encoding="utf-8")
    return [f.path for f in figures if f.path is not None] + [page]


__all__ = ["Figure", "gather", "hist2d", "render_html", "write_report"]
