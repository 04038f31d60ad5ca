"""`catalogdb explain`: which wavelengths drive the CNN's predictions (Sect. 5.1, Figs. 15-16 of Shen & Luo 2024).

Shapley values per 1 A pixel with the `shap` package's GradientExplainer (expected gradients: SHAP
values of a differentiable model, averaged over a background sample). shap's DeepExplainer does not
run on these networks (it has no rule for the Leaky ReLU op under TensorFlow 2 / Keras 3), so the
gradient explainer is the one that works; it needs the TensorFlow (or PyTorch) backend.

- Stars: `stars` spectra of the training_set view, test rows first (no network saw them), then
  reference rows, in a fixed pseudo-random order (md5 of obsid).
- Background: `background` reference-set spectra (another fixed pseudo-random sample).
- Groups (Sect. 5.1): split "teff:5000" gives teff>5000 (hot) and teff<=5000 (cool); "feh:0" gives
  feh>=0 (metal-rich) and feh<0 (metal-poor); plus "all". Stars are grouped on the CNN's prediction
  (the ensemble mean) by default, so the same grouping works for target stars that have no labels;
  group_on="label" groups on the training labels (APOGEE/Gaia) instead.
- The model's output is the mean of its fold networks, so its Shapley values are the mean of theirs
  (Shapley values are linear in the model); each network is explained and the values averaged.
- Importance of pixel i for label j in group g: mean over the group's stars of |phi_ij|, normalised to sum
  to 1 over the pixels (the paper's "normalized average absolute Shapley values"). The normalisation
  removes the label's unit, so z-score and physical units give the same curve.

Stored in feature_importance (model_id, label, grp, wavelength, importance); re-running replaces that
model's rows for the same groups. The figure goes to the model folder.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalogdb import runs
from catalogdb.cnn import LABELS, N_PIXELS
from catalogdb.cnn.data import read_spectra
from catalogdb.errors import CatalogdbError
from catalogdb.spectra import GRID

DEFAULT_NSAMPLES = 32  # expected-gradient samples per star; shap's default is 200 (see benchmarks/explain.py)
DEFAULT_BACKGROUND = 100
CHUNK = 100  # stars explained at once: bounds memory at CHUNK x 4875 x 5 values per network

# Strong lines annotated on the figure: rest-frame vacuum wavelengths (A), the grid's frame. Names are the
# usual (air) designations.
STRONG_LINES: tuple[tuple[str, float], ...] = (
    ("Ca II K", 3934.78), ("Ca II H + H\u03b5", 3970.0), ("H\u03b4", 4102.89), ("Ca I 4227", 4227.92),
    ("Fe I 4272", 4272.96), ("CH G band", 4305.0), ("H\u03b3", 4341.69), ("H\u03b2", 4862.68),
    ("Mg b", 5174.13), ("Na D", 5894.57), ("H\u03b1", 6564.61), ("Ca II 8542", 8544.44), ("Ca II 8662", 8664.52),
)

Progress = Callable[[int, int], None]

STARS_SQL = """
select t.obsid, s.flux, {labels}, t.split = 'test' as is_test
from training_set t join spectrum s using (obsid)
order by t.split <> 'test', md5(t.obsid::text || :salt)
limit :n
"""
BACKGROUND_SQL = """
select t.obsid, s.flux
from training_set t join spectrum s using (obsid)
where t.split <> 'test'
order by md5(t.obsid::text || :salt)
limit :n
"""


@dataclass(frozen=True)
class Split:
    """Two groups of stars on one label: `high` (above the threshold) and `low`."""

    label: str
    threshold: float

    @property
    def names(self) -> tuple[str, str]:
        """(high group, low group) as stored in feature_importance.grp; the paper's inequality sides."""
        t = f"{self.threshold:g}"
        if self.label == "feh":
            return f"feh>={t}", f"feh<{t}"  # metal-rich: [Fe/H] >= 0 dex
        return f"{self.label}>{t}", f"{self.label}<={t}"  # hot: Teff > 5000 K

    @property
    def titles(self) -> tuple[str, str]:
        """Legend texts."""
        t = f"{self.threshold:g}"
        if self.label == "teff":
            return f"hot (Teff > {t} K)", f"cool (Teff \u2264 {t} K)"
        if self.label == "feh":
            return f"metal-rich ([Fe/H] \u2265 {t})", f"metal-poor ([Fe/H] < {t})"
        return self.names

    def high(self, values: np.ndarray) -> np.ndarray:
        """Mask of the high group."""
        return values >= self.threshold if self.label == "feh" else values > self.threshold


def parse_split(text: str) -> Split:
    """'teff:5000' or 'feh:0' (the label, a colon, the threshold in the label's unit)."""
    label, sep, value = text.partition(":")
    label = label.strip().lower()
    if label not in ("teff", "feh") or not sep:
        raise CatalogdbError(f"--split must be teff:<K> or feh:<dex> (e.g. teff:5000, feh:0), got {text!r}")
    try:
        threshold = float(value)
    except ValueError:
        raise CatalogdbError(f"--split {text!r}: {value!r} is not a number") from None
    if not math.isfinite(threshold):
        raise CatalogdbError(f"--split {text!r}: the threshold must be finite")
    return Split(label, threshold)


def nearest_line(wavelength: float, within: float = 6.0) -> str | None:
    """Name of the annotated strong line within `within` A of `wavelength`, if any."""
    name, lam = min(STRONG_LINES, key=lambda item: abs(item[1] - wavelength))
    return name if abs(lam - wavelength) <= within else None


def _explainer(network, background: np.ndarray):
    import keras

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # shap's colour maps vs matplotlib
        import shap

    if keras.backend.backend() not in ("tensorflow", "torch"):
        raise CatalogdbError(f"catalogdb explain needs KERAS_BACKEND=tensorflow or torch (shap's gradient explainer); "
                             f"this run uses {keras.backend.backend()}")
    return shap.GradientExplainer(network, background[:, :, None], batch_size=50)


def shap_values(networks: list, flux: np.ndarray, background: np.ndarray, nsamples: int = DEFAULT_NSAMPLES,
                seed: int = 0, progress: Progress | None = None) -> np.ndarray:
    """Shapley values of the networks' mean output: float32 [n, 4875, labels], in z-score units of each label."""
    explainers = [_explainer(net, background) for net in networks]
    out = np.empty((len(flux), N_PIXELS, len(LABELS)), dtype=np.float32)
    for start in range(0, len(flux), CHUNK):
        x = flux[start:start + CHUNK, :, None]
        acc = np.zeros((len(x), N_PIXELS, len(LABELS)), dtype=np.float64)
        for k, explainer in enumerate(explainers):
            with warnings.catch_warnings():
                # shap calls the functional model with a list; Keras 3 warns that its input is named `flux`
                warnings.filterwarnings("ignore", message="The structure of `inputs`", category=UserWarning)
                values = explainer.shap_values(x, nsamples=nsamples, rseed=seed * 1000 + start + k)
            acc += _as_array(values, len(x))
        out[start:start + len(x)] = acc / len(explainers)
        if progress is not None:
            progress(start + len(x), len(flux))
    return out


def _as_array(values, n: int) -> np.ndarray:
    """shap's output ([n, 4875, 1, labels], or a list of [n, 4875, 1] per output in older shap) as [n, 4875, labels]."""
    if isinstance(values, list):
        values = np.stack([np.asarray(v) for v in values], axis=-1)
    values = np.asarray(values)
    values = values.reshape(n, N_PIXELS, -1)
    if values.shape[-1] != len(LABELS):
        raise CatalogdbError(f"shap returned {values.shape[-1]} outputs, the model has {len(LABELS)}")
    return values


def group_importance(phi: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Normalised mean |phi| per group: {grp: [labels, 4875]}, each row summing to 1 (NaN for an empty group)."""
    out = {}
    absphi = np.abs(phi)
    for name, mask in masks.items():
        if not mask.any():
            out[name] = np.full((len(LABELS), N_PIXELS), np.nan)
            continue
        mean = absphi[mask].mean(axis=0, dtype=np.float64).T  # [labels, pixels]
        total = mean.sum(axis=1, keepdims=True)
        out[name] = mean / np.where(total > 0, total, 1.0)
    return out


def explain_model(engine: Engine, model_id: str | None = None, stars: int = 2000, split: str = "teff:5000",
                  nsamples: int = DEFAULT_NSAMPLES, background: int = DEFAULT_BACKGROUND,
                  group_on: str = "prediction", seed: int = 0, figure: Path | bool = True,
                  progress: Progress | None = None) -> dict:
    """Shapley importance per label and wavelength for two groups of stars (and all); stored and drawn.

    Returns model_id, split, group_on, groups {grp: stars}, stars, nsamples, background, seconds, figure
    (path or None), top {label: {grp: [(wavelength, importance, nearest strong line or None), ...]}} (10 each)
    and importance {grp: float64 [5, 4875]} (rows in LABELS order).
    """
    from catalogdb.cnn.registry import load_model

    sp = parse_split(split)
    if stars < 1 or nsamples < 1 or background < 1:
        raise CatalogdbError("--stars, nsamples and background must be >= 1")
    if group_on not in ("prediction", "label"):
        raise CatalogdbError(f"group_on must be 'prediction' or 'label', got {group_on!r}")
    t0 = time.monotonic()
    model = load_model(engine, model_id)
    params = {"model_id": model.model_id, "stars": stars, "split": split, "group_on": group_on, "nsamples": nsamples,
              "background": background, "seed": seed, "explainer": "shap.GradientExplainer"}
    with runs.recorded(engine, "explain", params) as run:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            salt = str(seed)
            flux, cols = read_spectra(conn, STARS_SQL.format(labels=", ".join(f"t.{c}" for c in LABELS)),
                                      {"salt": salt, "n": stars})
            bg, _ = read_spectra(conn, BACKGROUND_SQL, {"salt": f"bg{salt}", "n": background})
        if len(flux) == 0:
            raise CatalogdbError("the training_set view has no spectra to explain: train a model on it first")
        if len(bg) == 0:
            raise CatalogdbError("the training_set view has no reference rows for the background sample")
        if group_on == "prediction":
            values = model.predict(flux)[0][:, LABELS.index(sp.label)]
        else:
            values = cols[1 + LABELS.index(sp.label)].astype(np.float64)
        high = sp.high(values)
        masks = {sp.names[0]: high, sp.names[1]: ~high, "all": np.ones(len(flux), dtype=bool)}

        phi = shap_values(model.networks, flux, bg, nsamples, seed, progress)
        importance = group_importance(phi, masks)
        rows = _write(engine, model.model_id, importance)

        fig_path = None
        if figure:
            fig_path = Path(figure) if not isinstance(figure, bool) else (
                (model.path or Path(".")) / f"feature_importance_{sp.label}{sp.threshold:g}.png")
            plot_importance(fig_path, importance, sp, model.model_id,
                            {name: int(m.sum()) for name, m in masks.items()}, group_on)
        seconds = round(time.monotonic() - t0, 1)
        run.row_counts = {"stars": len(flux), "rows": rows, "seconds": seconds}
    return {"model_id": model.model_id, "split": split, "group_on": group_on,
            "groups": {name: int(m.sum()) for name, m in masks.items()}, "stars": len(flux),
            "test_stars": int(cols[-1].astype(bool).sum()), "nsamples": nsamples, "background": len(bg),
            "networks": len(model.networks), "seconds": seconds, "figure": None if fig_path is None else str(fig_path),
            "top": top_pixels(importance), "importance": importance, "run_id": run.run_id}


def top_pixels(importance: dict[str, np.ndarray], n: int = 10) -> dict[str, dict[str, list]]:
    """The n most important wavelengths per label and group, with the nearest annotated strong line."""
    out: dict[str, dict[str, list]] = {label: {} for label in LABELS}
    for grp, curves in importance.items():
        for j, label in enumerate(LABELS):
            if not np.isfinite(curves[j]).all():
                continue
            order = np.argsort(curves[j])[::-1][:n]
            out[label][grp] = [(int(GRID[i]), float(curves[j, i]), nearest_line(float(GRID[i]))) for i in order]
    return out


def _write(engine: Engine, model_id: str, importance: dict[str, np.ndarray]) -> int:
    """Replace this model's rows for these groups with COPY; returns the rows written."""
    buf = io.StringIO()
    wave = GRID.astype(int)
    n = 0
    for grp, curves in importance.items():
        for j, label in enumerate(LABELS):
            if not np.isfinite(curves[j]).all():
                continue  # an empty group has no curve
            for w, v in zip(wave, curves[j], strict=True):
                buf.write(f"{model_id}\t{label}\t{grp}\t{w}\t{float(v):.7g}\n")
            n += len(wave)
    with engine.begin() as conn:
        conn.execute(sa.text("delete from feature_importance where model_id = :m and grp = any(:g)"),
                     {"m": model_id, "g": list(importance)})
        cur = conn.connection.driver_connection.cursor()
        with cur.copy("COPY feature_importance (model_id, label, grp, wavelength, importance) FROM STDIN") as copy:
            copy.write(buf.getvalue())
    return n


def read_importance(engine: Engine, model_id: str, grp: str) -> np.ndarray:
    """A stored curve set: float64 [5, 4875] in LABELS order (NaN where missing)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select label, wavelength, importance from feature_importance "
                                    "where model_id = :m and grp = :g"), {"m": model_id, "g": grp}).all()
    out = np.full((len(LABELS), N_PIXELS), np.nan)
    lo = int(GRID[0])
    for label, w, v in rows:
        out[LABELS.index(label), int(w) - lo] = v
    return out


LABEL_TITLES = {"teff": "T$_{\\rm eff}$", "logg": "log g", "feh": "[Fe/H]", "mg": "M$_G$", "bprp0": "(BP-RP)$_0$"}


def plot_importance(path: Path, importance: dict[str, np.ndarray], sp: Split, model_id: str,
                    counts: dict[str, int], group_on: str) -> Path:
    """Figs. 15-16: normalised mean |SHAP| per label against wavelength, two groups, strong lines annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wave = GRID.astype(float)
    ranges = ((3925.0, 5500.0), (5500.0, 8799.0))  # the paper's panel; then the red part it leaves out
    fig, axes = plt.subplots(len(LABELS), 2, figsize=(15, 2.1 * len(LABELS) + 1.0), sharex="col",
                             gridspec_kw={"width_ratios": (3, 2)}, squeeze=False)
    styles = ((sp.names[0], sp.titles[0], {"color": "#e7549a", "lw": 0.8}),
              (sp.names[1], sp.titles[1], {"color": "#2b6cb0", "lw": 0.8, "ls": ":"}))
    for j, label in enumerate(LABELS):
        top = max(np.nanmax(importance[g][j]) if np.isfinite(importance[g][j]).any() else 0.0
                  for g, _, _ in styles) or 1.0
        for c, (lo, hi) in enumerate(ranges):
            ax = axes[j, c]
            sel = (wave >= lo) & (wave <= hi)
            for grp, title, style in styles:
                if np.isfinite(importance[grp][j]).any():
                    ax.plot(wave[sel], importance[grp][j, sel], label=f"{title}, N={counts[grp]}", **style)
            ax.set_xlim(lo, hi)
            ax.set_ylim(0, top * 1.08)
            for name, lam in STRONG_LINES:
                if lo <= lam <= hi:
                    ax.axvline(lam, color="0.75", lw=0.5, zorder=0)
                    if j == 0:
                        ax.text(lam, 1.02, name, transform=ax.get_xaxis_transform(), rotation=90, fontsize=7,
                                ha="center", va="bottom")
            if c == 0:
                ax.set_ylabel(LABEL_TITLES[label])
        if j == 0:
            axes[0, 0].legend(loc="upper right", fontsize=8, frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("rest-frame vacuum wavelength (\u00c5)")
    fig.suptitle(f"normalised mean |SHAP| per pixel, model {model_id} (groups on the CNN's "
                 f"{'prediction' if group_on == 'prediction' else 'labels'})", y=0.995, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
