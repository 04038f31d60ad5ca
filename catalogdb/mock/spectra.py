"""Mock LAMOST LRS spectra: synthesis on the LAMOST log-linear grid and files in the DR8+ layout.

A spectrum is a Planck continuum at Teff, blanketed in the blue by metals, times an instrument response
and a flux scale, with absorption lines at their vacuum wavelengths: the Balmer series, Ca II H and K,
the CH G band, Mg b, Na D, the Ca II triplet, several dozen Fe I lines and a forest of weak metal lines.
Line opacities respond to Teff, log g (pressure wings, the Ca triplet) and [Fe/H] (and [alpha/M] for
Mg and Ca), and are shifted by the true radial velocity. Noise follows the band S/N of the catalogue
row; a few pixels are masked, some spectra have spikes, and the red end is truncated to 3902-3909
pixels like the real files. Everything is vectorised over a batch of spectra.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

from catalogdb.mock.lamost import C_KMS, SNR_BAND_WAVELENGTH

COEFF0, COEFF1, NPIX_MAX = 3.5682, 1e-4, 3909
LOGLAM = COEFF0 + COEFF1 * np.arange(NPIX_MAX)
WAVE = 10.0**LOGLAM
SIGMA_INSTR_PIX = 1.05  # R ~ 1800: FWHM ~ 2.4 pixels of 69 km/s
MASK_BITS = (1, 2, 4, 8, 16, 32)


def _air_to_vac(air: np.ndarray) -> np.ndarray:
    s2 = (1e4 / air) ** 2
    return air * (1 + 8.34254e-5 + 2.406147e-2 / (130 - s2) + 1.5998e-4 / (38.9 - s2))


_FE_AIR = np.array([
    4045.81, 4063.59, 4071.74, 4132.06, 4143.87, 4202.03, 4250.79, 4260.47, 4271.76, 4325.76, 4383.55,
    4404.75, 4415.12, 4528.61, 4890.76, 4891.49, 4920.50, 4957.60, 5006.12, 5012.07, 5041.76, 5049.82,
    5079.74, 5083.34, 5110.41, 5171.60, 5227.19, 5232.94, 5269.54, 5328.04, 5371.49, 5397.13, 5405.77,
    5429.70, 5446.92, 5455.61, 5497.52, 5506.78, 5586.76, 5615.64, 6136.62, 6191.56, 6230.72, 6252.56,
    6393.60, 6400.00, 6430.85, 6494.98, 6677.99, 7511.02, 8327.05, 8387.77, 8688.62, 8824.22,
])


@cache
def line_list() -> dict[str, np.ndarray]:
    """The synthetic line list: vacuum wavelength, family code, base strength, Gaussian and Lorentzian widths.

    Families: 0 Fe I / weak metal, 1 Balmer, 2 Ca II H&K, 3 Mg b / Mg I, 4 Na D, 5 Ca triplet, 6 CH G band,
    7 Ca I 4227, 8 TiO-like bands (cool stars only).
    """
    rows: list[tuple[float, int, float, float, float]] = []
    for lam in _air_to_vac(_FE_AIR):
        rows.append((lam, 0, 0.4, 0.0, 0.0))
    for lam, a in ((6564.61, 1.0), (4862.68, 1.0), (4341.69, 0.9), (4102.89, 0.8), (3971.20, 0.6),
                   (3890.16, 0.5), (3836.47, 0.35)):
        rows.append((lam, 1, a, 0.6, 0.0))
    rows += [(3934.78, 2, 6.0, 0.8, 0.0), (3969.59, 2, 5.0, 0.8, 0.0)]
    rows += [(5168.76, 3, 1.2, 0.3, 0.0), (5174.13, 3, 1.6, 0.3, 0.0), (5185.05, 3, 2.0, 0.3, 0.0),
             (8809.18, 3, 0.5, 0.1, 0.0), (4572.38, 3, 0.5, 0.1, 0.0)]
    rows += [(5891.58, 4, 1.8, 0.2, 0.0), (5897.56, 4, 1.4, 0.2, 0.0)]
    rows += [(8500.36, 5, 0.9, 0.4, 0.0), (8544.44, 5, 1.6, 0.5, 0.0), (8664.52, 5, 1.4, 0.5, 0.0)]
    rows += [(4305.0, 6, 0.35, 0.0, 5.0), (4227.92, 7, 1.2, 0.15, 0.0)]
    rows += [(6160.0, 8, 0.25, 0.0, 14.0), (7055.0, 8, 0.35, 0.0, 16.0), (7590.0, 8, 0.25, 0.0, 14.0)]
    # A fixed forest of weak metal lines (the same for every survey and seed).
    frng = np.random.default_rng(20240101)
    forest = np.sort(np.concatenate([frng.uniform(3800, 5600, 260), frng.uniform(5600, 8900, 110)]))
    rows += [(lam, 0, float(a), 0.0, 0.0) for lam, a in zip(forest, frng.uniform(0.05, 0.3, len(forest)), strict=True)]
    a = np.array(rows)
    return {"lam": a[:, 0], "family": a[:, 1].astype(int), "strength": a[:, 2], "lorentz": a[:, 3],
            "extra_sigma": a[:, 4]}


def _response() -> np.ndarray:
    """Smooth instrument response (throughput x CCD QE) of both arms on the LAMOST grid."""
    w = WAVE
    blue = 1 / (1 + np.exp(-(w - 3950) / 120)) * np.exp(-0.5 * ((w - 5000) / 1500) ** 2)
    red = np.exp(-0.5 * ((w - 7000) / 1900) ** 2) / (1 + np.exp((w - 8950) / 120))
    wgt = 1 / (1 + np.exp(-(w - 5900) / 60))
    return (1 - wgt) * blue + wgt * 0.95 * red


RESPONSE = _response()
DEPTH_MAX = 0.7


def _strengths(fam: int, base: float, teff: np.ndarray, logg: np.ndarray, feh: np.ndarray,
               alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak opacity and Lorentzian half width (pixels) of one line for each star."""
    t = (teff - 5000.0) / 1000.0
    pg = 10 ** (0.25 * (logg - 4.4))  # pressure broadening grows with gravity
    metal = 10**feh
    if fam == 0:
        s = base * metal * np.exp(-0.85 * t) * (1 + 0.08 * (4.4 - logg))
        return s, np.zeros_like(s)
    if fam == 1:
        s = base * np.exp(1.1 * (teff - 5800.0) / 1000.0)
        return s, 0.6 * pg * (teff / 5800.0) ** 2
    if fam == 2:
        s = base * 10 ** (0.3 * feh) * np.exp(-0.3 * t)
        return s, 1.5 * pg
    if fam == 3:
        s = base * 10 ** (0.9 * (feh + alpha)) * np.exp(-0.8 * t)
        return s, 0.5 * pg * base
    if fam == 4:
        s = base * metal * np.exp(-1.1 * t)
        return s, 0.3 * pg
    if fam == 5:
        s = base * 10 ** (0.45 * (feh + alpha)) * (1 + 0.25 * (4.5 - logg)) * np.exp(-0.2 * t)
        return s, 0.4 / pg
    if fam == 6:
        s = base * 10 ** (0.6 * feh) * np.exp(-1.2 * t) * (teff < 6600)
        return s, np.zeros_like(s)
    if fam == 7:
        s = base * metal * np.exp(-1.4 * t)
        return s, 0.2 * pg
    s = base * np.exp(-(teff - 3900.0) / 220.0) * 10 ** (0.3 * feh)
    return s, np.zeros_like(s)


def synthesize(rng: np.random.Generator, teff: np.ndarray, logg: np.ndarray, feh: np.ndarray,
               alpha: np.ndarray, rv: np.ndarray, snr5: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    """Spectra on the full 3909-pixel grid: FLUX, IVAR, ANDMASK, ORMASK, NORMALIZATION (n, 3909)."""
    n = len(teff)
    lines = line_list()
    zfac = 1 + rv / C_KMS
    pix = np.arange(NPIX_MAX, dtype=np.float64)
    rest = WAVE[None, :] / zfac[:, None]
    # Continuum: Planck in lambda, normalised at 5500 A rest, with blue metal blanketing.
    x = 1.43877735e8 / (rest * teff[:, None])
    x0 = 1.43877735e8 / (5500.0 * teff)
    cont = (5500.0 / rest) ** 5 * np.expm1(x0)[:, None] / np.expm1(x)
    cont *= np.exp(-0.08 * 10 ** feh[:, None] * np.exp(-(teff[:, None] - 5000) / 1500) * (4000 / rest) ** 4)
    tau = np.zeros((n, NPIX_MAX))
    dpix = np.log10(zfac) / COEFF1  # Doppler shift in pixels
    for lam, fam, base, lor0, extra in zip(lines["lam"], lines["family"], lines["strength"], lines["lorentz"],
                                          lines["extra_sigma"], strict=True):
        c0 = (np.log10(lam) - COEFF0) / COEFF1
        s, gam = _strengths(int(fam), float(base), teff, logg, feh, alpha)
        gam = gam * (lor0 > 0) * 1.0
        sig = np.hypot(SIGMA_INSTR_PIX, extra)
        half = int(6 * sig + 60 * lor0 + 8)
        lo, hi = max(int(c0) - half, 0), min(int(c0) + half + 1, NPIX_MAX)
        if hi <= lo:
            continue
        xx = pix[None, lo:hi] - (c0 + dpix)[:, None]
        prof = np.exp(-0.5 * (xx / sig) ** 2)
        if lor0 > 0:
            g2 = (gam * 6.0)[:, None] ** 2
            prof = prof + 0.15 * g2 / (xx**2 + g2)
        tau[:, lo:hi] += s[:, None] * prof
    # Saturated cores stay above ~30 % of the continuum: at R ~ 1800 the instrument profile fills them in
    # (real LAMOST Ca II K cores sit at 0.2-0.3), so only noisy pixels reach the preprocessing's 0.1 floor.
    model = 1 - DEPTH_MAX * (1 - np.exp(-tau))
    # Instrument: fixed response, a per-spectrum flux-calibration tilt, and a flux scale from G.
    tilt = 1 + rng.normal(0, 0.05, n)[:, None] * (WAVE[None, :] - 6000) / 3000
    scale = 900 * 10 ** (-0.4 * (g - 14.5)) * np.exp(rng.normal(0, 0.3, n))
    scale = np.clip(scale, 80, 5e4)
    smooth = cont * RESPONSE[None, :] * tilt * scale[:, None]
    # S/N per pixel interpolated between the band centres (in log S/N).
    lsnr = np.log(np.maximum(snr5, 0.05))
    snr = np.exp(np.stack([np.interp(LOGLAM, np.log10(SNR_BAND_WAVELENGTH), row) for row in lsnr]))
    # The band S/N refers to the band's mean level; pixels fainter than that (blue end) get lower S/N.
    level = np.stack([np.interp(LOGLAM, np.log10(SNR_BAND_WAVELENGTH),
                                np.interp(np.log10(SNR_BAND_WAVELENGTH), LOGLAM, row)) for row in smooth])
    sigma = np.sqrt(np.maximum(smooth, 1e-3) * np.maximum(level, 1e-3)) / snr
    flux = smooth * model + sigma * rng.standard_normal((n, NPIX_MAX))
    ivar = 1.0 / sigma**2
    ormask = np.zeros((n, NPIX_MAX), np.float32)
    andmask = np.zeros((n, NPIX_MAX), np.float32)
    # Masked runs (bad columns, sky residuals) in ~30 % of spectra; ANDMASK pixels lose their weight.
    for i in np.flatnonzero(rng.random(n) < 0.3):
        for _ in range(rng.integers(1, 3)):
            start = int(rng.integers(0, NPIX_MAX - 6))
            ln = int(rng.integers(1, 6))
            bit = float(rng.choice(MASK_BITS))
            ormask[i, start:start + ln] = bit
            if rng.random() < 0.5:
                andmask[i, start:start + ln] = bit
                ivar[i, start:start + ln] = 0.0
    # Unmasked spikes (cosmic rays, sky line residuals) in ~10 % of spectra.
    for i in np.flatnonzero(rng.random(n) < 0.1):
        k = rng.integers(0, NPIX_MAX, rng.integers(1, 4))
        flux[i, k] += sigma[i, k] * rng.uniform(8, 30, len(k))
    norm = flux / smooth  # LAMOST's NORMALIZATION: the flux over its (here: true) pseudo-continuum
    return {"FLUX": flux.astype(np.float32), "IVAR": ivar.astype(np.float32), "ANDMASK": andmask,
            "ORMASK": ormask, "NORMALIZATION": norm.astype(np.float32)}


# --- files -------------------------------------------------------------------------------------------

COLUMNS = ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK", "NORMALIZATION")


def _card(key: str, value: object, comment: str = "", decimals: int | None = None) -> str:
    """One 80-character FITS header card in fixed format."""
    if decimals is not None:
        v = f"{float(value):.{decimals}f}".rjust(20)
    elif isinstance(value, bool):
        v = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int | np.integer):
        v = f"{int(value):>20d}"
    elif isinstance(value, float | np.floating):
        s = f"{float(value):.8f}" if abs(value) < 1e6 else f"{float(value):.10E}"
        v = f"{s:>20}"
    else:
        s = str(value).replace("'", "''")
        v = f"'{s:<8}'".ljust(20)
    card = f"{key:<8}= {v}" + (f" / {comment}" if comment else "")
    return card[:80].ljust(80)


@cache
def _table_header(npix: int) -> bytes:
    from astropy.io import fits

    cols = [fits.Column(name=c, format=f"{npix}E", array=np.zeros((1, npix), np.float32)) for c in COLUMNS]
    hdu = fits.BinTableHDU.from_columns(cols, name="COADD")
    return hdu.header.tostring().encode("ascii")


def _pad(n: int) -> int:
    return (-n) % 2880


def primary_header(row: np.void, npix: int) -> bytes:
    """The primary header of one spectrum file (DR8+ keywords) from its catalogue row."""
    obsid = int(row["obsid"])
    lmjd = int(row["lmjd"])
    cards = [
        _card("SIMPLE", True, "Primary Header created by catalogdb mock"), _card("BITPIX", 8),
        _card("NAXIS", 0, "Number of array dimensions"), _card("EXTEND", True),
        "COMMENT --------FILE INFORMATION".ljust(80),
        _card("FILENAME", f"spec-{obsid}.fits"), _card("OBSID", obsid, "Unique number ID of this spectrum"),
        _card("AUTHOR", "LAMOST Pipeline", "Who compiled the information"),
        _card("DATA_V", "LAMOST DR9", "Data release version"), _card("N_EXTEN", 1, "The amount of extension"),
        _card("NORM", 1, "1 if there exists a normalizated spectrum"),
        _card("ORIGIN", "catalogdb mock", "Organization responsible for creating this file"),
        _card("TELESCOP", "LAMOST", "GuoShouJing Telescope"), _card("LONGITUD", 117.58, "[deg] Longitude of site", 2),
        _card("LATITUDE", 40.39, "[deg] Latitude of site", 2),
        _card("DATE-OBS", row["obsdate"].decode() + "T18:00:00.00", "The observation median UTC"),
        _card("LMJD", lmjd, "Local Modified Julian Day"), _card("MJD", lmjd - 1, "Modified Julian Day"),
        _card("PLANID", row["planid"].decode(), "Plan ID in use"),
        _card("RA", row["ra"], "[deg] Right ascension of object", 6),
        _card("DEC", row["dec"], "[deg] Declination of object", 6),
        _card("RA_OBS", row["ra_obs"], "[deg] Right ascension during observing", 6),
        _card("DEC_OBS", row["dec_obs"], "[deg] Declination during observing", 6),
        _card("DESIG", "LAMOST " + row["designation"].decode(), "Designation of LAMOST target"),
        _card("FIBERID", int(row["fiberid"]), "Fiber ID of Object"), _card("OBJTYPE", "Star"),
        _card("FIB_TYPE", "Obj", "Fiber type of object"),
        _card("FIB_MASK", int(row["fibermask"]), "Bitmask of warning values, 0 means good"),
        _card("OBS_TYPE", "OBJ"), _card("SPID", int(row["spid"]), "Spectrograph ID"),
        _card("HELIO", True, "Heliocentric correction"), _card("VACUUM", True, "Wavelengths are in vacuum"),
        _card("NWORDER", 2, "Number of linear-log10 coefficients"),
        _card("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
        _card("COEFF0", COEFF0, "Central wavelength (log10) of first pixel", 4),
        _card("COEFF1", COEFF1, "Log10 dispersion per pixel", 4),
        _card("CRVAL1", COEFF0, "Central wavelength (log10) of first pixel", 4),
        _card("CD1_1", COEFF1, "Log10 dispersion per pixel", 4), _card("CRPIX1", 1, "Starting pixel (1-indexed)"),
        _card("CTYPE1", "LINEAR"), _card("DC-FLAG", 1, "Log-linear flag"),
        "COMMENT --------SPECTRA ANALYSIS RESULTS".ljust(80),
        _card("VERSPIPE", "v2.9.8", "Version of Pipeline"), _card("CLASS", row["class"].decode(), "Class of object"),
        _card("SUBCLASS", row["subclass"].decode(), "Subclass of object"),
        _card("Z", row["z"], "Redshift of object", 8),
        _card("Z_ERR", row["z_err"], "Redshift error of object", 8),
        _card("ZFLAG", "LASP", "Which method computes the redshift"),
        *[_card(f"SNR{b.upper()}", row[f"snr{b}"], f"SNR of {b} filter", 2) for b in "ugriz"],
        "END".ljust(80),
    ]
    text = "".join(cards)
    return (text + " " * _pad(len(text))).encode("ascii")


def npix_for(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pixel counts per spectrum: the red end is truncated by 0-7 pixels, as in the real files."""
    return rng.choice([3909, 3906, 3902, 3908, 3904], n, p=[0.55, 0.15, 0.2, 0.05, 0.05])


def write_files(folder: Path, rows: np.ndarray, spec: dict[str, np.ndarray], npix: np.ndarray) -> list[Path]:
    """Write one DR8+ FITS file per catalogue row: primary header + COADD table of one row."""
    folder.mkdir(parents=True, exist_ok=True)
    wave = WAVE.astype(np.float32)
    paths = []
    for i, row in enumerate(rows):
        m = int(npix[i])
        # One table row = the six vectors back to back, big-endian (concatenate returns native order).
        data = np.concatenate([spec["FLUX"][i, :m], spec["IVAR"][i, :m], wave[:m], spec["ANDMASK"][i, :m],
                               spec["ORMASK"][i, :m], spec["NORMALIZATION"][i, :m]]).astype(">f4").tobytes()
        path = folder / f"spec-{int(row['obsid'])}.fits"
        blob = primary_header(row, m) + _table_header(m) + data + b"\0" * _pad(len(data))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)
        paths.append(path)
    return paths
