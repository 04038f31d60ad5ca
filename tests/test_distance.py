"""Distances (Eqs. 3-5) by the closed forms, and galactocentric coordinates, against numerical truth."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Galactocentric, SkyCoord
from scipy.optimize import minimize_scalar
from scipy.stats import norm

from catalogdb.distance import distance_mode, distance_percentile, extinction_g
from catalogdb.galaxy import galactocentric

SIGMA_M = 0.2546  # the authors' test-set scatter of M_G


def pdf(d, m, mu, sigma, a_g):
    """P(d) = |h'(d)| P_M(h(d)) with h(d) = m - 5 log10 d + 5 - A_G (Eq. 5)."""
    h = m - 5 * np.log10(d) + 5 - a_g
    return 5 / (d * np.log(10)) * norm.pdf(h, mu, sigma)


@pytest.mark.parametrize(("m", "mu", "a_g"), [(14.2, 4.5, 0.3), (11.0, 3.1, 0.05), (17.3, 5.6, 1.2)])
def test_mode_is_the_maximum_of_the_pdf(m, mu, a_g):
    mode = distance_mode(m, mu, SIGMA_M, a_g)
    best = minimize_scalar(lambda d: -pdf(d, m, mu, SIGMA_M, a_g), bounds=(mode / 2, mode * 2),
                           method="bounded", options={"xatol": mode * 1e-10})
    # the pdf is flat at its maximum, so a maximiser finds it only to ~sqrt(eps): here 1.6e-9 off; 1e-6 is margin
    assert best.x == pytest.approx(mode, rel=1e-6)


@pytest.mark.parametrize(("m", "mu", "a_g"), [(14.2, 4.5, 0.3), (16.0, 6.0, 0.8)])
def test_percentiles_are_quantiles_of_the_pdf(m, mu, a_g):
    median = distance_percentile(m, mu, SIGMA_M, a_g, 50)
    grid = np.geomspace(median / 20, median * 20, 400_001)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (pdf(grid[1:], m, mu, SIGMA_M, a_g)
                                               + pdf(grid[:-1], m, mu, SIGMA_M, a_g)) * np.diff(grid))])
    for q, prob in ((16, norm.cdf(-1)), (50, 0.5), (84, norm.cdf(1))):
        numeric = np.interp(prob, cdf, grid)
        # trapezoid CDF with a log step of 1.5e-5: the quantiles come out within 5e-10; 1e-6 is margin
        assert distance_percentile(m, mu, SIGMA_M, a_g, q) == pytest.approx(numeric, rel=1e-6)


def test_extinction_coefficient():
    assert extinction_g(1.2, 0.7) == pytest.approx(1.8626 * 0.5)


def test_galactocentric_equals_astropy():
    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(0, 360, 200), rng.uniform(-10, 90, 200)
    d = rng.uniform(50, 5000, 200)
    d[3] = np.nan
    ours = galactocentric(ra, dec, d)
    ref = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, distance=np.nan_to_num(d, nan=1) * u.pc).transform_to(
        Galactocentric()).cartesian.xyz.to_value(u.pc).T
    good = np.isfinite(d)
    # the same astropy transform (ours without the NaN row): equal here; 1e-6 pc leaves room for rounding only
    assert np.abs(ours[good, :3] - ref[good]).max() < 1e-6
    assert np.abs(ours[good, 3] - np.hypot(ref[good, 0], ref[good, 1])).max() < 1e-6
    assert np.isnan(ours[3]).all()
