"""Distance PDF summaries and extinction (Eqs. 3-5 of Shen & Luo 2024).

With M ~ N(mu_M, sigma_M) and h(d) = m - 5 log10 d + 5 - A_G, the distance PDF
P(d) = |h'(d)| P_M(h(d)) is log-normal: ln d ~ N(ln d0, s^2) with d0 = 10**((m - mu_M - A_G + 5)/5)
and s = sigma_M ln10 / 5. Its mode (the catalogue's cnn_distance, as in the authors' code) is
d0 exp(-s^2); its median is d0 and its 16th/84th percentiles are d0 exp(-/+ s) (for q = 16/84
exactly at the +-1 sigma points of ln d, as PAPER.md states).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

LN10 = np.log(10.0)
# A_G / E(BP-RP) = 0.83627 / (1.08337 - 0.63439) (authors' code; PAPER.md, Distance)
AG_PER_EBPRP = 1.8626


def extinction_g(bp_rp, bprp0):
    """G-band extinction A_G = 1.8626 (bp_rp - (BP-RP)_0)."""
    return AG_PER_EBPRP * (np.asarray(bp_rp, dtype=np.float64) - np.asarray(bprp0, dtype=np.float64))


def _median(m, mu_m, a_g):
    m, mu_m, a_g = (np.asarray(v, dtype=np.float64) for v in (m, mu_m, a_g))
    return 10.0 ** ((m - mu_m - a_g + 5.0) / 5.0)


def distance_mode(m, mu_m, sigma_m, a_g):
    """Mode of P(d) in pc: 10**((m - mu_M - A_G + 5)/5) * exp(-(sigma_M ln10/5)**2)."""
    s = np.asarray(sigma_m, dtype=np.float64) * LN10 / 5.0
    return _median(m, mu_m, a_g) * np.exp(-(s**2))


def distance_percentile(m, mu_m, sigma_m, a_g, q):
    """The q-th percentile (0..100) of P(d) in pc; q = 50 is the median, 16/84 the 1-sigma bounds."""
    s = np.asarray(sigma_m, dtype=np.float64) * LN10 / 5.0
    q = np.asarray(q, dtype=np.float64)
    # 16 and 84 are the +-1 sigma points by the paper's convention (not ndtri(0.16) = -0.994)
    z = np.where(q == 16.0, -1.0, np.where(q == 84.0, 1.0, ndtri(q / 100.0)))
    return _median(m, mu_m, a_g) * np.exp(z * s)


def photometric_distance(g, bp_rp, ag_gspphot, mg, bprp0, sigma_mg) -> dict[str, np.ndarray]:
    """A_G and the P(d) mode and percentiles for predicted M_G and (BP-RP)_0: the one recipe of train and predict.

    A_G = 1.8626 (bp_rp - (BP-RP)_0); where Gaia has no bp_rp, GSP-Phot's ag_gspphot, and `a_g_source`
    says which ("bp_rp", "ag_gspphot", or None where neither exists and the distance is NaN).
    """
    bp_rp, ag_gspphot = (np.asarray(v, dtype=np.float64) for v in (bp_rp, ag_gspphot))
    a_g = extinction_g(bp_rp, bprp0)
    source = np.where(np.isfinite(a_g), "bp_rp", None).astype(object)
    fallback = ~np.isfinite(a_g) & np.isfinite(ag_gspphot)
    a_g = np.where(fallback, ag_gspphot, a_g)
    source[fallback] = "ag_gspphot"
    return {"a_g": a_g, "a_g_source": source, "mode": distance_mode(g, mg, sigma_mg, a_g),
            **{f"p{q}": distance_percentile(g, mg, sigma_mg, a_g, q) for q in (16, 50, 84)}}
