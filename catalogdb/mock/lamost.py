"""Mock LAMOST DR9 LRS stellar (AFGK) catalogue rows: repeat observations, S/N, LASP labels.

S/N in g scales with the G flux (S/N_g = 10 at G ~ 16.4 for a solar colour) with night-to-night
scatter; LASP labels are the truth plus S/N-dependent errors. Missing values carry LAMOST's -9999.
"""

from __future__ import annotations

import numpy as np

SENTINEL = -9999.0
C_KMS = 299_792.458

LAMOST_DTYPE = np.dtype([
    ("obsid", "i8"), ("uid", "S11"), ("designation", "S19"), ("obsdate", "S10"), ("lmjd", "i4"),
    ("planid", "S14"), ("spid", "i2"), ("fiberid", "i2"), ("ra", "f8"), ("dec", "f8"), ("ra_obs", "f8"),
    ("dec_obs", "f8"), ("snru", "f4"), ("snrg", "f4"), ("snrr", "f4"), ("snri", "f4"), ("snrz", "f4"),
    ("class", "S6"), ("subclass", "S4"), ("z", "f8"), ("z_err", "f8"), ("fibermask", "i4"),
    ("teff", "f4"), ("teff_err", "f4"), ("logg", "f4"), ("logg_err", "f4"), ("feh", "f4"), ("feh_err", "f4"),
    ("rv", "f4"), ("rv_err", "f4"), ("alpha_m", "f4"), ("alpha_m_err", "f4"), ("gaia_source_id", "i8"),
    ("gaia_g_mean_mag", "f4"),
])
# FITS units only ('dex' is not one, so LAMOST's dex columns carry none).
UNITS = {"ra": "deg", "dec": "deg", "ra_obs": "deg", "dec_obs": "deg", "teff": "K", "teff_err": "K",
         "rv": "km/s", "rv_err": "km/s", "gaia_g_mean_mag": "mag", "lmjd": "d"}

_SUBCLASS_TEFF = np.array([7200, 6900, 6550, 6400, 6300, 6100, 5950, 5850, 5770, 5700, 5650, 5600, 5550,
                           5500, 5450, 5350, 5200, 5050, 4900, 4700, 4550, 4350, 0])
_SUBCLASS = np.array([b"F0", b"F2", b"F5", b"F6", b"F7", b"F9", b"G0", b"G1", b"G2", b"G3", b"G4", b"G5",
                      b"G6", b"G7", b"G8", b"G9", b"K0", b"K1", b"K2", b"K3", b"K4", b"K5", b"K7"])
SNR_BAND_WAVELENGTH = np.array([3551.0, 4686.0, 6166.0, 7480.0, 8932.0])  # u g r i z (A)


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) ASCII byte matrix."""
    x = np.asarray(x, dtype=np.int64)
    p = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (48 + (x[:, None] // p[None, :]) % 10).astype(np.uint8)


def _join(parts: list[np.ndarray], n: int) -> np.ndarray:
    """Concatenate byte-matrix parts (or single characters) into an array of fixed-width strings."""
    mats = [np.full((n, 1), ord(p), np.uint8) if isinstance(p, str) else p for p in parts]
    m = np.ascontiguousarray(np.hstack(mats))
    return m.view(f"S{m.shape[1]}").ravel()


def designation(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """LAMOST designations Jhhmmss.ss+ddmmss.s."""
    n = len(ra)
    cs = np.floor(np.asarray(ra) / 15.0 * 360_000).astype(np.int64) % (24 * 360_000)
    ds = np.floor(np.abs(dec) * 36_000).astype(np.int64)
    sign = np.where(np.asarray(dec) < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    sec = _digits(cs % 6000, 4)
    dsec = _digits(ds % 600, 3)
    return _join(["J", _digits(cs // 360_000, 2), _digits(cs // 6000 % 60, 2), sec[:, :2], ".", sec[:, 2:],
                  sign, _digits(ds // 36_000, 2), _digits(ds // 600 % 60, 2), dsec[:, :2], ".", dsec[:, 2:]], n)


def uids(index: np.ndarray) -> np.ndarray:
    """LAMOST-like star identifiers shared by repeat observations."""
    return _join(["U", _digits(index + 1, 10)], len(index))


def subclass(teff: np.ndarray) -> np.ndarray:
    """MK subclass from Teff, as the LAMOST 1D pipeline would assign it."""
    return _SUBCLASS[np.argmax(teff[:, None] >= _SUBCLASS_TEFF[None, :], axis=1)]


def observations(rng: np.random.Generator, s: dict[str, np.ndarray], star_index: np.ndarray,
                 gaia_id: np.ndarray, gaia_g: np.ndarray, obs_start: int) -> tuple[np.ndarray, dict]:
    """Catalogue rows (LAMOST_DTYPE) for the stars `s` and per-row extras: star row, true rv, S/N vector."""
    n = len(star_index)
    nobs = np.minimum(1 + rng.poisson(0.45, n), 6)
    star = np.repeat(np.arange(n), nobs)
    m = len(star)
    rec = np.zeros(m, LAMOST_DTYPE.newbyteorder(">"))  # FITS byte order: written without a copy
    rec["obsid"] = 100_000_001 + obs_start + np.arange(m)
    rec["uid"] = uids(star_index)[star]
    # LAMOST positions come from its input catalogues: within ~0.1" of Gaia's (epoch differences).
    cosd = np.cos(np.deg2rad(s["dec"]))
    ra = (s["ra"] + rng.normal(0, 0.08, n) / 3600 / cosd) % 360.0
    dec = s["dec"] + rng.normal(0, 0.08, n) / 3600
    rec["designation"] = designation(ra, dec)[star]
    rec["ra"], rec["dec"] = ra[star], dec[star]
    rec["ra_obs"] = (rec["ra"] + rng.normal(0, 0.15, m) / 3600 / cosd[star]) % 360.0
    rec["dec_obs"] = rec["dec"] + rng.normal(0, 0.15, m) / 3600
    lmjd = rng.integers(55_800, 59_400, m)
    rec["lmjd"] = lmjd
    rec["obsdate"] = (np.datetime64("1858-11-17") + lmjd.astype("timedelta64[D]")).astype("S10")
    cell = (np.floor(rec["ra"] / 4).astype(np.int64) * 100 + np.floor((rec["dec"] + 10) / 4).astype(np.int64))
    rec["planid"] = _join(["G", "A", "C", _digits(cell, 5), "N", _digits(lmjd % 10_000, 4), "B"], m)
    rec["spid"] = rng.integers(1, 17, m)
    rec["fiberid"] = rng.integers(1, 251, m)

    g = s["g"][star]
    col = s["bprp0"][star] + s["ebprp"][star]
    snrg = 10 * 10 ** (-0.4 * (g - 16.4)) * 10 ** (-0.3 * (col - 0.8)) * np.exp(0.35 * rng.standard_normal(m))
    snrg = np.clip(snrg, 1.0, 900.0)
    snrr = snrg * np.clip(1.7 + 1.2 * (col - 0.6), 1.1, 6) * np.exp(0.08 * rng.standard_normal(m))
    snri = snrr * 1.35 * np.exp(0.05 * rng.standard_normal(m))
    snrz = snri * 0.85 * np.exp(0.05 * rng.standard_normal(m))
    snru = snrg * 0.12 * 10 ** (-0.6 * (col - 0.8)) * np.exp(0.2 * rng.standard_normal(m))
    for k, v in zip(("snru", "snrg", "snrr", "snri", "snrz"), (snru, snrg, snrr, snri, snrz), strict=True):
        rec[k] = np.round(v, 2)
    rec["class"] = b"STAR"

    # LASP: truth plus S/N-dependent errors; the quoted errors scatter around the real ones.
    st = 25 + 900 / snrg
    sl = 0.04 + 1.5 / snrg
    sf = 0.02 + 0.8 / snrg
    teff = s["teff"][star] + st * rng.standard_normal(m)
    rec["teff"], rec["teff_err"] = teff, st * np.exp(0.1 * rng.standard_normal(m))
    rec["logg"] = s["logg"][star] + sl * rng.standard_normal(m)
    rec["logg_err"] = sl * np.exp(0.1 * rng.standard_normal(m))
    rec["feh"] = s["feh"][star] + sf * rng.standard_normal(m)
    rec["feh_err"] = sf * np.exp(0.1 * rng.standard_normal(m))
    rec["alpha_m"] = s["alpha_m"][star] + (0.02 + 0.4 / snrg) * rng.standard_normal(m)
    rec["alpha_m_err"] = 0.02 + 0.4 / snrg
    rv_true = s["rv"][star]
    srv = 3 + 60 / snrg
    rec["rv"], rec["rv_err"] = rv_true + srv * rng.standard_normal(m), srv
    # The 1D pipeline's redshift is a separate, slightly noisier estimate of the same velocity.
    sz = (5 + 50 / snrg) / C_KMS
    rec["z"] = rv_true / C_KMS + sz * rng.standard_normal(m)
    rec["z_err"] = sz
    rec["subclass"] = subclass(teff)
    fm = rng.random(m) < 0.05
    rec["fibermask"] = np.where(fm, rng.choice([1, 2, 4, 8, 16, 64], m), 0)
    rec["gaia_source_id"] = gaia_id[star]
    rec["gaia_g_mean_mag"] = gaia_g[star]

    # Sentinels: LASP failures on a few spectra; [alpha/M] only above S/N_g 8.
    fail = rng.random(m) < 0.004
    for k in ("teff", "teff_err", "logg", "logg_err", "feh", "feh_err", "alpha_m", "alpha_m_err"):
        rec[k][fail] = SENTINEL
    low = snrg < 8
    rec["alpha_m"][low] = SENTINEL
    rec["alpha_m_err"][low] = SENTINEL
    snr5 = np.column_stack([snru, snrg, snrr, snri, snrz])
    return rec, {"star": star, "rv_true": rv_true, "snr5": snr5, "nobs": nobs, "lasp_fail": fail}
