"""The paper's preprocessing written the straightforward way, as the authors' notebook does it.

This is the literal loop code of SolarDis ``1_preprocess.ipynb`` (Shen & Luo 2024): astropy to
read, ``np.polyfit``/``np.poly1d`` on raw wavelengths, a while loop over strong-line runs, a for loop
removing them, ``interp1d`` onto the grid. Two changes only: arrays are cast to float64 right after
reading (the notebook fitted float32 wavelengths, which `catalogdb.spectra` documents), and the
masks are read by column name rather than position. The tests hold `catalogdb.spectra` equal to it;
the benchmark uses it as the baseline.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from scipy.interpolate import interp1d
from scipy.signal import savgol_filter

WAVE = np.arange(3925, 8800, 1)


def read_reference(path):
    """OBSID, Z and the five arrays (float64) of a LAMOST file, read with astropy."""
    with fits.open(path, memmap=False) as hdu:
        header = hdu[0].header
        obsid = header["obsid"]
        z = header["z"]
        if "COADD" in hdu:
            row = hdu["COADD"].data[0]
            arrays = [row[name] for name in ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK")]
        else:
            arrays = [hdu[0].data[k] for k in range(5)]
        arrays = [np.array(a, dtype=np.float64) for a in arrays]
    return obsid, z, arrays


def find_strong_line(wave, flux):
    """Wavelength bounds of the strong-line runs, each widened by its own length."""
    coeff = np.polyfit(wave, flux, 5)
    formula = np.poly1d(coeff)
    y = formula(wave)
    d = y - flux
    sigma = np.std(d)
    n = np.where((flux < y - 3 * sigma) | (flux > y + 3 * sigma))
    left, right = widen_runs(n[0], len(wave))
    return wave[left], wave[right]


def widen_runs(a, size):
    """First and last index of each run of consecutive indices in `a`, widened (the notebook's loop)."""
    i = 0
    left = []
    right = []
    while i < len(a):
        head = i
        length = 0
        while (i < len(a) - 1) and (a[i + 1] == a[i] + 1):
            length += 1
            i += 1
        if head == 0:
            left.append(np.max([a[head] - length, 0]))
        else:
            left.append(np.max([a[head] - length, a[head - 1] + 1]))
        if i == len(a) - 1:
            right.append(np.min([a[i] + length, size - 1]))
        else:
            right.append(np.min([a[i] + length, a[i + 1] - 1]))
        i += 1
    return left, right


def mask_strong_line(wave, flux, left, right):
    """Drop the points inside each [left, right] wavelength range."""
    for i in range(len(left)):
        n = np.where((wave < left[i]) | (wave > right[i]))
        wave = wave[n]
        flux = flux[n]
    return [wave, flux]


def find_conti_spec(wave, flux, nploy):
    """Ten polynomial fits, each keeping the points less than one sigma below the fit."""
    for _ in np.arange(10):
        coeff = np.polyfit(wave, flux, nploy)
        formula = np.poly1d(coeff)
        y = formula(wave)
        d = y - flux
        sigma = np.std(d)
        n = np.where(d < sigma)
        wave = wave[n]
        flux = flux[n]
    return formula


def normalize_spec(wave, flux):
    """Flux of one arm divided by its pseudo-continuum."""
    left, right = find_strong_line(wave, flux)
    wave1, flux1 = mask_strong_line(wave, flux, left, right)
    formula = find_conti_spec(wave1, flux1, 5)
    conti = formula(wave)
    return flux / conti


def preprocess_reference(path):
    """(obsid, normalised flux on 3925..8799 A, flag), or raises as the notebook's loop body did."""
    obsid, z, (flux, _ivar, wavelength, andmask, ormask) = read_reference(path)
    bad_pix = np.append(np.nonzero(andmask), np.nonzero(ormask))
    f = np.delete(flux, bad_pix)
    w = np.delete(wavelength, bad_pix)
    w = w / (1 + z)
    f_smooth = savgol_filter(f, 15, 7)
    index_b = np.where(w < 6000)
    index_r = np.where(w >= 6000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        norm_b_smooth = normalize_spec(w[index_b], f_smooth[index_b])
        norm_r_smooth = normalize_spec(w[index_r], f_smooth[index_r])
    norm_smooth = np.append(norm_b_smooth, norm_r_smooth)
    f_normed_smooth = interp1d(w, norm_smooth)(WAVE)
    f_check = np.array(f_normed_smooth)
    cond = np.where((f_check > 1.2) | (f_check < 0.1))[0]
    if len(cond) == 0:
        return obsid, f_normed_smooth, 0
    f_check[cond] = 1
    return obsid, f_check, 1
