"""Mock APOGEE DR17 allStar rows for a subset of the LAMOST stars, plus APOGEE-only stars.

Positions come from 2MASS (an older epoch), so they sit 0.1-0.3 arcsec from Gaia/LAMOST. ASPCAP labels
are the truth plus small errors; a few stars have bad ASPCAP fits (NaN labels, STAR_BAD set), a few have
STARFLAG bits, and a few appear twice (the second row from another telescope, EXTRATARG bit 4 set),
as in the real file.
"""

from __future__ import annotations

import numpy as np

from catalogdb.mock.lamost import _digits, _join

STAR_BAD = 1 << 23
DUPLICATE = 1 << 4  # EXTRATARG bit 4: "Non-primary (not highest S/N) duplicate"

APOGEE_DTYPE = np.dtype([
    ("APOGEE_ID", "S18"), ("TELESCOPE", "S6"), ("FIELD", "S12"), ("RA", ">f8"), ("DEC", ">f8"),
    ("GLON", ">f8"), ("GLAT", ">f8"), ("SNR", ">f4"), ("STARFLAG", ">i8"), ("ASPCAPFLAG", ">i8"),
    ("EXTRATARG", ">i4"), ("GAIAEDR3_SOURCE_ID", ">i8"), ("PARAM", ">f4", (9,)), ("FPARAM", ">f4", (9,)),
    ("TEFF", ">f4"), ("TEFF_ERR", ">f4"), ("LOGG", ">f4"), ("LOGG_ERR", ">f4"), ("M_H", ">f4"),
    ("M_H_ERR", ">f4"), ("ALPHA_M", ">f4"), ("ALPHA_M_ERR", ">f4"), ("FE_H", ">f4"), ("FE_H_ERR", ">f4"),
])
UNITS = {"RA": "deg", "DEC": "deg", "GLON": "deg", "GLAT": "deg", "TEFF": "K", "TEFF_ERR": "K"}


def apogee_ids(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """2MASS-style identifiers 2Mhhmmssss+ddmmsss (RA to 0.01 s, Dec to 0.1 arcsec), as APOGEE_ID writes them."""
    n = len(ra)
    cs = np.floor(np.asarray(ra) / 15.0 * 360_000).astype(np.int64) % (24 * 360_000)
    ds = np.floor(np.abs(dec) * 36_000).astype(np.int64)
    sign = np.where(np.asarray(dec) < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    return _join(["2", "M", _digits(cs // 360_000, 2), _digits(cs // 6000 % 60, 2), _digits(cs % 6000, 4),
                  sign, _digits(ds // 36_000, 2), _digits(ds // 600 % 60, 2), _digits(ds % 600, 3)], n)


def select(rng: np.random.Generator, g: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of stars observed by APOGEE: `fraction` of them, brighter stars preferred (H < 12.2)."""
    n = len(g)
    k = min(n, int(round(fraction * n)))
    w = np.clip(1.2 - 0.3 * (g - 14.0), 0.2, 1.2)
    keys = np.log(rng.random(n)) / w  # Efraimidis-Spirakis weighted sampling without replacement
    return np.sort(np.argpartition(-keys, k - 1)[:k]) if k else np.zeros(0, np.int64)


def rows(rng: np.random.Generator, s: dict[str, np.ndarray], idx: np.ndarray, gaia_id: np.ndarray,
         glon: np.ndarray, glat: np.ndarray, n_extra: int) -> np.ndarray:
    """allStar rows for stars `idx` of `s` and `n_extra` APOGEE-only stars."""
    m = len(idx)
    cosd = np.cos(np.deg2rad(s["dec"][idx]))
    ra = np.concatenate([(s["ra"][idx] + rng.normal(0, 0.15, m) / 3600 / cosd) % 360,
                         rng.uniform(0, 360, n_extra)])
    dec = np.concatenate([s["dec"][idx] + rng.normal(0, 0.15, m) / 3600,
                          np.rad2deg(np.arcsin(rng.uniform(-0.17, 0.98, n_extra)))])
    teff_t = np.concatenate([s["teff"][idx], rng.uniform(4000, 6500, n_extra)])
    logg_t = np.concatenate([s["logg"][idx], rng.uniform(1.5, 4.6, n_extra)])
    feh_t = np.concatenate([s["feh"][idx], rng.normal(-0.2, 0.3, n_extra)])
    am_t = np.concatenate([s["alpha_m"][idx], rng.normal(0.05, 0.08, n_extra)])
    n = m + n_extra
    rec = np.zeros(n, APOGEE_DTYPE)
    rec["APOGEE_ID"] = apogee_ids(ra, dec)
    north = rng.random(n) < 0.93
    rec["TELESCOPE"] = np.where(north, b"apo25m", b"lco25m")
    cell = np.floor(ra / 6).astype(np.int64) * 100 + np.floor((dec + 90) / 6).astype(np.int64)
    rec["FIELD"] = _join(["F", _digits(cell, 5)], n)
    rec["RA"], rec["DEC"] = ra, dec
    rec["GLON"] = np.concatenate([glon[idx], rng.uniform(0, 360, n_extra)])
    rec["GLAT"] = np.concatenate([glat[idx], rng.uniform(-60, 60, n_extra)])
    snr = np.clip(np.exp(rng.normal(np.log(120), 0.6, n)), 10, 2000)
    rec["SNR"] = snr
    te = 8 + 900 / snr
    le = 0.02 + 2 / snr
    fe = 0.006 + 0.8 / snr
    teff = teff_t + rng.normal(0, 1, n) * te
    logg = logg_t + rng.normal(0, 1, n) * le
    feh = feh_t + rng.normal(0, 1, n) * fe
    mh = feh + 0.01 + rng.normal(0, 0.01, n)
    am = am_t + rng.normal(0, 0.02, n)
    rec["TEFF"], rec["TEFF_ERR"] = teff, te * 2.5
    rec["LOGG"], rec["LOGG_ERR"] = logg, le * 1.5
    rec["FE_H"], rec["FE_H_ERR"] = feh, fe * 1.5
    rec["M_H"], rec["M_H_ERR"] = mh, fe * 1.5
    rec["ALPHA_M"], rec["ALPHA_M_ERR"] = am, 0.02
    vmic = 1.0 + 0.2 * rng.random(n)
    param = np.column_stack([teff, logg, vmic, 3 + 2 * rng.random(n), mh, am, np.zeros(n), np.zeros(n),
                             np.full(n, np.nan)])
    rec["PARAM"], rec["FPARAM"] = param, param + rng.normal(0, 0.001, param.shape)
    rec["STARFLAG"] = np.where(rng.random(n) < 0.05, rng.choice([1 << 3, 1 << 9, 1 << 16, 1 << 17], n), 0)
    bad = rng.random(n) < 0.02
    rec["ASPCAPFLAG"] = np.where(bad, STAR_BAD, np.where(rng.random(n) < 0.1, 1 << 8, 0))
    for k in ("TEFF", "TEFF_ERR", "LOGG", "LOGG_ERR", "FE_H", "FE_H_ERR", "M_H", "M_H_ERR"):
        rec[k][bad] = np.nan
    rec["PARAM"][bad] = np.nan
    rec["GAIAEDR3_SOURCE_ID"] = np.concatenate([gaia_id[idx], np.zeros(n_extra, np.int64)])
    # A few stars observed from both hemispheres: the second row is flagged as a duplicate.
    dup = np.flatnonzero(rng.random(n) < 0.02)
    extra = rec[dup].copy()
    extra["TELESCOPE"] = np.where(extra["TELESCOPE"] == b"apo25m", b"lco25m", b"apo25m")
    extra["EXTRATARG"] = DUPLICATE
    extra["SNR"] *= 0.6
    return np.concatenate([rec, extra])
