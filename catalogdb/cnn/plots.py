"""Fig. 5 of Shen & Luo (2024): CNN predictions against the labels on the test set, and distances."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catalogdb.cnn import LABELS

TITLES = {"teff": r"$T_{\rm eff}$ [K]", "logg": r"$\log g$ [dex]", "feh": "[Fe/H] [dex]",
          "mg": r"$M_G$ [mag]", "bprp0": r"$(BP-RP)_0$ [mag]"}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _panel(ax, x, y, label: str, bias, scatter, unit: str = "", xlabel: str | None = None,
           extra: str = "") -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) > 2000:
        ax.hexbin(x, y, gridsize=60, mincnt=1, bins="log", cmap="viridis")
    else:
        ax.scatter(x, y, s=4, alpha=0.6, color="k", linewidths=0)
    if len(x):
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], "r:", lw=1)
        if scatter is not None:
            ax.plot([lo, hi], [lo + scatter, hi + scatter], color="0.5", ls="--", lw=0.8)
            ax.plot([lo, hi], [lo - scatter, hi - scatter], color="0.5", ls="--", lw=0.8)
    ax.set_xlabel(xlabel or f"label {label}")
    ax.set_ylabel(f"CNN {label}")
    ax.text(0.04, 0.96, f"$\\mu$ = {_fmt(bias)}{unit}\n$\\sigma$ = {_fmt(scatter)}{unit}\nN = {len(x)}{extra}",
            transform=ax.transAxes, va="top", fontsize=8)


def _shrinkage(m: dict) -> str:
    """The response (slope of predicted on true) and the scatter per S/N_g bin, as the panel's extra lines."""
    lines = [f"\nresponse = {_fmt(m.get('response'))}"]
    lines += [f"S/N {b['snrg']}: $\\sigma$ {_fmt(b['scatter'])} (N {b['n']})" for b in m.get("by_snrg", []) if b["n"]]
    return "\n".join(lines)


def fig5(path: Path, truth: np.ndarray, pred: np.ndarray, d_cnn: np.ndarray, r_med_geo: np.ndarray,
         metrics: dict, title: str = "") -> Path:
    """Write the six-panel PNG (five labels, CNN distance against r_med_geo) to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 8), layout="constrained")
    for j, name in enumerate(LABELS):
        m = metrics["labels"][name]
        _panel(axes.flat[j], truth[:, j], pred[:, j], TITLES[name], m["bias"], m["scatter"], extra=_shrinkage(m))
    dist = metrics["distance"]
    _panel(axes.flat[5], r_med_geo, d_cnn, "distance [pc]", dist["bias_pc"], dist["scatter_pc"], " pc",
           xlabel="Bailer-Jones r_med_geo [pc]")
    if dist["frac_median"] is not None:
        axes.flat[5].text(0.96, 0.04, f"fractional error: median {100 * dist['frac_median']:.1f}%, "
                          f"std {100 * dist['frac_std']:.1f}%", transform=axes.flat[5].transAxes,
                          ha="right", fontsize=8)
    fig.suptitle(f"{title}: test set (N = {metrics['n_test']})")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
