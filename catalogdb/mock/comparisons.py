"""Mock comparison catalogues (Sects. 4.2-4.3 of Shen & Luo 2024) written from the mock's truth.

Three APOGEE DR17 distance value-added catalogues, row by row beside the mock allStar file, and GALAH
DR3 for a southern, brighter subset of the LAMOST stars. Each has its own kind of error and bias, set
so that the mean fractional difference (ours - theirs) / theirs of a perfect catalogue against each is
the paper's (StarHorse +7 %, DistMass -4 %, astroNN -4 %):

- StarHorse: isochrone distances, 6 % log-normal scatter, scaled so true / dist50 averages 1.07; one row
  per APOGEE_ID (the primary allStar entry, no TELESCOPE or FIELD, as in DR17), distances in kpc; stars
  with a failed ASPCAP fit get no distance and ~4 % of the stars are missing from the file.
- DistMass: 11 % scatter (the paper's quoted standard deviation), true / WEIGHTED_DIST averages 0.96;
  no distance for log g < 1 (outside its training set) or a failed ASPCAP fit.
- astroNN: 8 % scatter, true / weighted_dist averages 0.96; ~1 % missing, written as -9999 or NaN.
- GALAH DR3: Teff, log g, [Fe/H] with 50 K / 0.12 dex / 0.11 dex scatter and biases of +15 K,
  -0.05 dex, -0.02 dex; reported errors that reach beyond the paper's cuts; flag_sp, flag_fe_h and
  red_flag set on some spectra (SME not finished, flag_sp 512, gets NaN); ~10 % of stars observed twice
  (flag_repeat = 1).

File names, column names and units follow the surveys' data models (see catalogdb/sources/*.toml).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catalogdb.mock.apogee import DUPLICATE, apogee_ids
from catalogdb.mock.files import APOGEE_FILE, FitsTableWriter

STARHORSE_FILE = "apogee/APOGEE_DR17_EDR3_STARHORSE_v2.fits"
DISTMASS_FILE = "apogee/APOGEE_DistMass-DR17_v1.6.1.fits"
ASTRONN_FILE = "apogee/apogee_astroNN-DR17.fits"
GALAH_FILE = "galah/GALAH_DR3_main_allstar_v2.fits"
SOURCES = {"starhorse": STARHORSE_FILE, "distmass": DISTMASS_FILE, "astronn": ASTRONN_FILE,
           "galah-dr3": GALAH_FILE}
"""Ingest source -> file written under the survey folder."""

# (mean fractional difference of the truth against the catalogue, log-normal scatter)
DISTANCE_MODEL = {"starhorse": (0.07, 0.06), "distmass": (-0.04, 0.11), "astronn": (-0.04, 0.08)}
GALAH_SCATTER = {"teff": 50.0, "logg": 0.12, "feh": 0.11}
GALAH_BIAS = {"teff": 15.0, "logg": -0.05, "feh": -0.02}

_KEY = [("APOGEE_ID", "S18"), ("TELESCOPE", "S6"), ("FIELD", "S12")]
# StarHorse DR17 (SDSS CAS apogee_starhorse): identifiers, then 5/16/50/84/95th percentiles; a subset here.
STARHORSE_DTYPE = np.dtype([
    ("APOGEE_ID", "S18"), ("ASPCAP_ID", "S64"), ("APSTAR_ID", "S64"), ("EDR3_source_id", ">i8"),
    ("mass16", ">f4"), ("mass50", ">f4"), ("mass84", ">f4"), ("met50", ">f4"),
    ("dist05", ">f4"), ("dist16", ">f4"), ("dist50", ">f4"), ("dist84", ">f4"), ("dist95", ">f4"),
    ("AV16", ">f4"), ("AV50", ">f4"), ("AV84", ">f4"), ("StarHorse_INPUTFLAGS", "S80"),
    ("StarHorse_OUTPUTFLAGS", "S80"),
])
DISTMASS_DTYPE = np.dtype([*_KEY, ("WEIGHTED_DIST", ">f4"), ("WEIGHTED_DIST_ERR", ">f4"), ("MASS", ">f4"),
                           ("MASS_ERR", ">f4")])
ASTRONN_DTYPE = np.dtype([*_KEY, ("TEFF", ">f4"), ("LOGG", ">f4"), ("FE_H", ">f4"), ("weighted_dist", ">f4"),
                          ("weighted_dist_error", ">f4"), ("dist", ">f4"), ("dist_error", ">f4")])
GALAH_DTYPE = np.dtype([
    ("star_id", "S16"), ("sobject_id", ">i8"), ("source_id", ">i8"), ("dr3_source_id", ">i8"),
    ("ra_dr2", ">f8"), ("dec_dr2", ">f8"), ("snr_c3_iraf", ">f4"), ("flag_repeat", ">i4"),
    ("teff", ">f4"), ("e_teff", ">f4"), ("logg", ">f4"), ("e_logg", ">f4"), ("fe_h", ">f4"), ("e_fe_h", ">f4"),
    ("flag_fe_h", ">i4"), ("flag_sp", ">i4"), ("red_flag", ">i4"),
])
UNITS = {
    "starhorse": {**{f"dist{q}": "kpc" for q in ("05", "16", "50", "84", "95")}, "AV16": "mag", "AV50": "mag",
                  "AV84": "mag", "mass16": "solMass", "mass50": "solMass", "mass84": "solMass"},
    "distmass": {"WEIGHTED_DIST": "pc", "WEIGHTED_DIST_ERR": "pc", "MASS": "solMass", "MASS_ERR": "solMass"},
    "astronn": {"TEFF": "K", "weighted_dist": "pc", "weighted_dist_error": "pc", "dist": "pc", "dist_error": "pc"},
    "galah-dr3": {"ra_dr2": "deg", "dec_dr2": "deg", "teff": "K", "e_teff": "K", "logg": "log(cm.s**-2)",
                  "e_logg": "log(cm.s**-2)"},
}


def _distances(rng: np.random.Generator, true: np.ndarray, kind: str) -> np.ndarray:
    """Distances with the catalogue's scatter, scaled so mean(true / d) = 1 + its mean difference."""
    frac, sigma = DISTANCE_MODEL[kind]
    # d = true * exp(e) * k with e ~ N(0, sigma): mean(true / d) = exp(sigma^2 / 2) / k = 1 + frac
    k = np.exp(sigma**2 / 2) / (1 + frac)
    return true * np.exp(rng.normal(0, sigma, len(true))) * k


def _apogee_truth(allstar: np.ndarray, truth, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True distance per allStar row (APOGEE-only stars get one drawn here) and a failed-ASPCAP mask."""
    ids = np.char.strip(np.asarray(allstar["APOGEE_ID"]).astype("U18"))
    known = truth[truth["apogee_id"] != ""]
    lookup = dict(zip(known["apogee_id"], known["distance_pc"], strict=True))
    dist = np.array([lookup.get(i, np.nan) for i in ids])
    other = ~np.isfinite(dist)
    dist[other] = np.exp(rng.uniform(np.log(300), np.log(8000), other.sum()))
    bad = ~np.isfinite(np.asarray(allstar["TEFF"], dtype=float))
    return dist, bad


def _write(path: Path, rec: np.ndarray, units: dict[str, str]) -> int:

    w = FitsTableWriter(path, rec.dtype, units)
    w.write(rec)
    w.close()
    return len(rec)


def _key(rec: np.ndarray, allstar: np.ndarray) -> None:
    for name, _ in _KEY:
        rec[name] = allstar[name]


def starhorse(rng: np.random.Generator, allstar: np.ndarray, true: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """StarHorse rows: one per APOGEE_ID (its primary allStar entry), less ~4 %, no distance where ASPCAP failed."""
    primary = (np.asarray(allstar["EXTRATARG"]) & DUPLICATE) == 0
    keep = primary & (rng.random(len(allstar)) >= 0.04)
    src = allstar[keep]
    rec = np.zeros(len(src), STARHORSE_DTYPE)
    ids = np.char.strip(np.asarray(src["APOGEE_ID"]).astype("U18"))
    tel = np.char.strip(np.asarray(src["TELESCOPE"]).astype("U6"))
    fld = np.char.strip(np.asarray(src["FIELD"]).astype("U12"))
    rec["APOGEE_ID"] = src["APOGEE_ID"]
    rec["APSTAR_ID"] = [f"apogee.{t}.stars.{f}.{i}" for t, f, i in zip(tel, fld, ids, strict=True)]
    rec["ASPCAP_ID"] = [f"apogee.{t}.synspec_rev1.{f}.{i}" for t, f, i in zip(tel, fld, ids, strict=True)]
    rec["EDR3_source_id"] = src["GAIAEDR3_SOURCE_ID"]
    d = _distances(rng, true[keep], "starhorse") / 1000.0  # kpc, as StarHorse writes them
    d[bad[keep]] = np.nan
    width = DISTANCE_MODEL["starhorse"][1]
    for q, z in (("05", -1.645), ("16", -1.0), ("50", 0.0), ("84", 1.0), ("95", 1.645)):
        rec[f"dist{q}"] = d * np.exp(z * width)
    ok = np.isfinite(d)
    av = np.where(ok, np.abs(rng.normal(0.3, 0.2, len(d))), np.nan)
    rec["AV16"], rec["AV50"], rec["AV84"] = av * 0.8, av, av * 1.2
    mass = np.where(ok, rng.uniform(0.8, 1.4, len(d)), np.nan)
    rec["mass16"], rec["mass50"], rec["mass84"] = mass * 0.9, mass, mass * 1.1
    rec["met50"] = np.where(ok, np.asarray(src["FE_H"], dtype=float), np.nan)
    rec["StarHorse_INPUTFLAGS"] = np.where(ok, b"TEFF, LOGG, MET, PARALLAX, 2MASS, WISE", b"")
    rec["StarHorse_OUTPUTFLAGS"] = b""
    return rec


def distmass(rng: np.random.Generator, allstar: np.ndarray, true: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """DistMass rows: every allStar row, no distance outside log g >= 1 or where ASPCAP failed."""
    rec = np.zeros(len(allstar), DISTMASS_DTYPE)
    _key(rec, allstar)
    d = _distances(rng, true, "distmass")
    with np.errstate(invalid="ignore"):
        d[bad | (np.asarray(allstar["LOGG"], dtype=float) < 1.0)] = np.nan
    rec["WEIGHTED_DIST"] = d
    rec["WEIGHTED_DIST_ERR"] = d * DISTANCE_MODEL["distmass"][1]
    rec["MASS"] = np.where(np.isfinite(d), rng.uniform(0.8, 1.6, len(d)), np.nan)
    rec["MASS_ERR"] = 0.1 * rec["MASS"]
    return rec


def astronn(rng: np.random.Generator, allstar: np.ndarray, true: np.ndarray) -> np.ndarray:
    """astroNN rows: every allStar row; ~1 % without a distance (-9999 or NaN, as both occur)."""
    n = len(allstar)
    rec = np.zeros(n, ASTRONN_DTYPE)
    _key(rec, allstar)
    for k in ("TEFF", "LOGG", "FE_H"):
        rec[k] = allstar[k]
    d = _distances(rng, true, "astronn")
    sigma = DISTANCE_MODEL["astronn"][1]
    rec["weighted_dist"], rec["weighted_dist_error"] = d, d * sigma
    rec["dist"], rec["dist_error"] = d * np.exp(rng.normal(0, 0.03, n)), d * sigma * 1.2
    miss = rng.random(n) < 0.01
    sentinel = miss & (rng.random(n) < 0.5)
    for k in ("weighted_dist", "weighted_dist_error"):
        rec[k][miss] = np.nan
        rec[k][sentinel] = -9999.0
    return rec


def galah(rng: np.random.Generator, truth) -> np.ndarray:
    """GALAH DR3 rows for a southern, brighter subset of the stars (and repeat spectra of some)."""
    dec, g = truth["dec"].to_numpy(), truth["g"].to_numpy()
    n_all = len(truth)
    # GALAH is southern (dec < +10 deg mostly) and brighter (V < 14): the overlap with LAMOST is the
    # equatorial strip; a small mock takes a larger share so the comparison has stars in it.
    share = float(min(0.6, max(0.02, 6000.0 / max(n_all, 1))))
    p = share * np.clip(1.3 - 0.25 * (g - 13.0), 0.1, 1.0) * (dec < 25)
    pick = np.flatnonzero(rng.random(n_all) < p)
    t = truth.iloc[pick]
    m = len(pick)
    repeat = rng.random(m) < 0.10
    star = np.concatenate([np.arange(m), np.flatnonzero(repeat)])
    n = len(star)
    rec = np.zeros(n, GALAH_DTYPE)
    rec["flag_repeat"] = np.r_[np.zeros(m, int), np.ones(n - m, int)]
    # sobject_id: yymmdd, field (4 digits), spectrograph plate (01), fibre (3 digits), as GALAH numbers them
    night = rng.integers(0, 5 * 365, n)
    yymmdd = 131116 + 10000 * (night // 365) + 100 * ((night % 365) // 31) + (night % 31)
    i = np.arange(n)
    rec["sobject_id"] = yymmdd * 10**9 + (1 + (i // 390) % 9999) * 10**5 + 10**3 + 1 + i % 390
    order = np.argsort(rec["sobject_id"], kind="stable")
    sid = np.asarray(t["source_id"])[star]
    rec["source_id"] = sid  # DR2 and DR3 ids coincide for most stars
    rec["dr3_source_id"] = sid
    ra, de = np.asarray(t["ra"])[star], np.asarray(t["dec"])[star]
    rec["ra_dr2"], rec["dec_dr2"] = ra, de
    no_gaia = rng.random(n) < 0.005
    rec["ra_dr2"][no_gaia] = np.nan
    rec["dec_dr2"][no_gaia] = np.nan
    rec["star_id"] = [s[2:] for s in apogee_ids(ra, de)]  # 2MASS hhmmssss+ddmmsss
    gmag = np.asarray(t["g"])[star]
    snr = np.clip(np.exp(rng.normal(np.log(60) - 0.35 * (gmag - 13), 0.5)), 3, 400)
    snr[m:] *= 0.6
    rec["snr_c3_iraf"] = snr
    true = {"teff": np.asarray(t["teff"])[star], "logg": np.asarray(t["logg"])[star],
            "feh": np.asarray(t["feh"])[star]}
    # errors grow at low S/N; the reported ones are a noisy estimate of the real ones
    scale = np.clip(1.0 + 25.0 / snr, 1.0, 4.0) / 1.5
    for label, name in (("teff", "teff"), ("logg", "logg"), ("feh", "fe_h")):
        err = GALAH_SCATTER[label] * scale
        rec[name] = true[label] + GALAH_BIAS[label] + rng.normal(0, 1, n) * err
        rec[f"e_{name}"] = err * np.exp(rng.normal(0.3, 0.3, n))
    # flag_sp bits as GALAH DR3 defines them (galah-survey.org/dr3/flags): 4 low S/N, 512 SME did not finish
    rec["flag_sp"] = np.where(rng.random(n) < 0.10, rng.choice([1, 2, 8, 16, 32, 128, 512], n), 0)
    rec["flag_sp"][snr < 10] |= 4
    rec["flag_fe_h"] = np.where(rng.random(n) < 0.08, rng.choice([1, 2, 4], n), 0)
    rec["red_flag"] = np.where(rng.random(n) < 0.05, rng.choice([1, 2, 16, 64], n), 0)
    failed = (rec["flag_sp"] & 512) > 0  # no converged SME fit: non-finite parameters
    for name in ("teff", "e_teff", "logg", "e_logg", "fe_h", "e_fe_h"):
        rec[name][failed] = np.nan
    return rec[order]


def write_comparisons(out: Path, seed: int = 1) -> dict[str, int]:
    """Write the StarHorse, DistMass, astroNN and GALAH DR3 mock files under `out` (a mock survey folder)."""
    import pandas as pd
    from astropy.io import fits


    out = Path(out)
    truth = pd.read_parquet(out / "truth.parquet",
                            columns=["source_id", "ra", "dec", "g", "teff", "logg", "feh", "distance_pc", "apogee_id"])
    with fits.open(out / APOGEE_FILE, memmap=False) as hdul:
        cols = ["APOGEE_ID", "TELESCOPE", "FIELD", "TEFF", "LOGG", "FE_H", "EXTRATARG", "GAIAEDR3_SOURCE_ID"]
        data = hdul[1].data
        allstar = np.zeros(len(data), [(c, data.dtype[c].str) for c in cols])
        for c in cols:
            allstar[c] = data[c]
    ss = np.random.SeedSequence(seed, spawn_key=(0xC0, 0x3A))
    r_true, r_sh, r_dm, r_an, r_ga = (np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(5))
    true, bad = _apogee_truth(allstar, truth, r_true)
    rows = {
        STARHORSE_FILE: _write(out / STARHORSE_FILE, starhorse(r_sh, allstar, true, bad), UNITS["starhorse"]),
        DISTMASS_FILE: _write(out / DISTMASS_FILE, distmass(r_dm, allstar, true, bad), UNITS["distmass"]),
        ASTRONN_FILE: _write(out / ASTRONN_FILE, astronn(r_an, allstar, true), UNITS["astronn"]),
        GALAH_FILE: _write(out / GALAH_FILE, galah(r_ga, truth), UNITS["galah-dr3"]),
    }
    return rows


__all__ = ["SOURCES", "write_comparisons"]
