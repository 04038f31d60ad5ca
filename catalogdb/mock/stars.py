"""Mock stars: Teff, log g, [Fe/H] of dwarfs, subgiants and giants, their M_G and (BP-RP)_0, and a place
in the mock galaxy.

M_G follows from the parameters, not drawn independently: radius from g and mass, luminosity from radius
and Teff, then the Gaia G bolometric correction of Andrae et al. (2018). (BP-RP)_0 inverts the
colour-Teff-[Fe/H] relations of Mucciarelli, Bellazzini & Massari (2021). Extinction uses the paper's
coefficients: A_G = 0.83627 A_V, E(BP-RP) = (1.08337 - 0.63439) A_V, so A_G = 1.8626 E(BP-RP).
"""

from __future__ import annotations

import numpy as np

from catalogdb.mock import galaxy
from catalogdb.mock.galaxy import Disk

DWARF, SUBGIANT, GIANT = 0, 1, 2
KIND_NAMES = ("dwarf", "subgiant", "giant")
KIND_FRACTIONS = (0.62, 0.10, 0.28)  # by star, before the solar-like cut
AG_PER_AV = 0.83627
EBPRP_PER_AV = 1.08337 - 0.63439
AG_PER_EBPRP = AG_PER_AV / EBPRP_PER_AV  # 1.8626
TEFF_SUN, LOGG_SUN, MBOL_SUN = 5772.0, 4.438, 4.74

# Andrae et al. (2018) BC_G polynomial in (Teff - 5772): 4000-8000 K and 3300-4000 K.
_BC_HOT = (6.000e-02, 6.731e-05, -6.647e-08, 2.859e-11, -7.197e-15)
_BC_COOL = (1.749e00, 1.977e-03, 3.737e-07, -8.966e-11, -4.183e-14)
# Mucciarelli et al. (2021) theta = 5040/Teff = b0 + b1 C + b2 C^2 + b3 F + b4 F^2 + b5 F C, C = (BP-RP)_0.
_MBM_DWARF = (0.4929, 0.5092, -0.0353, 0.0192, -0.0020, -0.0395)
_MBM_GIANT = (0.5323, 0.4775, -0.0344, -0.0110, -0.0020, -0.0009)


def solar_like(teff: np.ndarray, logg: np.ndarray, feh: np.ndarray) -> np.ndarray:
    """The paper's Table 1 cut (used for the truth summaries; the pipeline applies it in SQL)."""
    return (teff >= 4800) & (teff <= 6800) & (feh >= -1) & (feh <= 1) & (logg >= 5.98 - 0.00035 * teff)


def bc_g(teff: np.ndarray) -> np.ndarray:
    """Gaia G bolometric correction (mag)."""
    x = np.asarray(teff, dtype=float) - TEFF_SUN
    hot = sum(c * x**i for i, c in enumerate(_BC_HOT))
    cool = sum(c * x**i for i, c in enumerate(_BC_COOL))
    return np.where(teff >= 4000, hot, cool)


def intrinsic_colour(teff: np.ndarray, feh: np.ndarray, giant: np.ndarray) -> np.ndarray:
    """(BP-RP)_0 from Teff and [Fe/H] (the root of the quadratic colour-Teff relation)."""
    theta = 5040.0 / np.asarray(teff, dtype=float)
    b = np.where(giant[:, None], np.array(_MBM_GIANT)[None, :], np.array(_MBM_DWARF)[None, :])
    a2 = b[:, 2]
    a1 = b[:, 1] + b[:, 5] * feh
    a0 = b[:, 0] + b[:, 3] * feh + b[:, 4] * feh**2 - theta
    disc = np.sqrt(np.maximum(a1**2 - 4 * a2 * a0, 0.0))
    return 2 * a0 / (-a1 - disc)  # the numerically stable form of the small root


def parameters(kind: np.ndarray, var: np.ndarray, feh: np.ndarray) -> dict[str, np.ndarray]:
    """Teff, log g, mass, radius, M_G, (BP-RP)_0 from the kind, per-star random variates and [Fe/H].

    `var` holds fixed standard-normal and uniform variates per star (columns n1, n2, n3, u1, u2, u3) so
    the same star can be re-evaluated when its [Fe/H] changes with its position.
    """
    n1, n2, n3, u1, u2, u3 = var.T
    teff = np.empty(len(kind))
    logg = np.empty(len(kind))
    mass = np.empty(len(kind))
    radius = np.empty(len(kind))

    d = kind == DWARF
    # Main sequence: mass from Teff (L ~ M^4, R ~ M^0.8 gives Teff ~ M^0.6); metal-rich stars of a given
    # Teff are more massive; radii grow with age by up to 30 %.
    teff[d] = np.clip(5750 + 650 * n1[d], 3900, 7300)
    mass[d] = (teff[d] / TEFF_SUN) ** (1 / 0.6) * 10 ** (0.12 * feh[d])
    radius[d] = mass[d] ** 0.85 * 10 ** (0.03 * feh[d]) * (1 + 0.3 * u1[d] ** 2)
    logg[d] = LOGG_SUN + np.log10(mass[d]) - 2 * np.log10(radius[d])

    s = kind == SUBGIANT
    teff[s] = 5000 + 1300 * u1[s] - 150 * feh[s]
    logg[s] = 3.55 + 0.5 * u2[s]
    mass[s] = 0.95 + 0.55 * u3[s]

    g = kind == GIANT
    clump = g & (u3 < 0.35)
    rgb = g & ~clump
    logg[clump] = 2.45 + 0.08 * n2[clump]
    teff[clump] = 4750 - 200 * feh[clump] + 80 * n1[clump]
    logg[rgb] = 1.3 + 2.1 * u2[rgb]
    teff[rgb] = 4620 + 330 * (logg[rgb] - 2.5) - 250 * feh[rgb] + 70 * n1[rgb]
    mass[g] = np.clip(1.15 * np.exp(0.2 * n3[g]), 0.8, 2.5)
    sg = s | g
    radius[sg] = np.sqrt(mass[sg] / 10 ** (logg[sg] - LOGG_SUN))
    teff = np.clip(teff, 3900, 7400)

    lum = radius**2 * (teff / TEFF_SUN) ** 4
    mg = MBOL_SUN - 2.5 * np.log10(lum) - bc_g(teff)
    bprp0 = intrinsic_colour(teff, feh, kind == GIANT)
    return {"teff": teff, "logg": logg, "mass": mass, "radius": radius, "mg": mg, "bprp0": bprp0}


def _sample_distances(rng: np.random.Generator, disk: Disk, u: np.ndarray, mg: np.ndarray,
                      kscale: np.ndarray, npts: int = 48) -> np.ndarray:
    """Distances (kpc) along each sightline from d^2 rho(d) x selection(G), within the magnitude limits."""
    dmin = 10 ** ((disk.g_min - mg + 5) / 5) / 1000
    dmax = 10 ** ((disk.g_max - mg + 5) / 5) / 1000
    t = (np.arange(npts) + 0.5) / npts
    logd = np.log(dmin)[:, None] + np.log(dmax / dmin)[:, None] * t[None, :]
    dgrid = np.exp(logd)
    xyz = galaxy.to_galactocentric(u[:, None, :], dgrid)
    thin, thick = galaxy.densities(disk, xyz)
    av = galaxy.extinction_av(disk, dgrid, galaxy.sin_b(u)[:, None], kscale[:, None])
    gmag = mg[:, None] + 5 * np.log10(dgrid * 100) + AG_PER_AV * av
    sel = 1.0 / (1.0 + np.exp((gmag - disk.g_turnover) / disk.g_turnover_width))
    # d^3 because the grid is uniform in log d.
    w = dgrid**3 * (thin + thick) * sel * ((gmag >= disk.g_min) & (gmag <= disk.g_max))
    cdf = np.cumsum(w, axis=1)
    tot = cdf[:, -1]
    r = rng.random(len(mg)) * tot
    k = np.minimum((cdf < r[:, None]).sum(axis=1), npts - 1)
    jitter = rng.random(len(mg)) - 0.5
    d = np.exp(logd[np.arange(len(mg)), k] + jitter * np.log(dmax / dmin) / npts)
    return np.where(tot > 0, d, np.nan)


def draw_stars(rng: np.random.Generator, n: int, disk: Disk) -> dict[str, np.ndarray]:
    """n stars with parameters, positions, extinction and apparent G inside the survey limits."""
    kind = rng.choice(3, size=n, p=KIND_FRACTIONS)
    var = np.column_stack([rng.standard_normal((n, 3)), rng.random((n, 3))])
    eps = rng.standard_normal(n) * galaxy.FEH_SCATTER
    feh = np.zeros(n)
    ra, dec, d, kscale = (np.full(n, np.nan) for _ in range(4))
    todo = np.arange(n)
    sdmin, sdmax = np.sin(np.deg2rad(disk.dec_min)), np.sin(np.deg2rad(disk.dec_max))
    for _ in range(30):
        m = len(todo)
        if m == 0:
            break
        ra[todo] = rng.random(m) * 360.0
        dec[todo] = np.rad2deg(np.arcsin(sdmin + (sdmax - sdmin) * rng.random(m)))
        kscale[todo] = np.exp(0.4 * rng.standard_normal(m))
        u = galaxy.unit_vectors(ra[todo], dec[todo])
        p = parameters(kind[todo], var[todo], feh[todo])
        d[todo] = _sample_distances(rng, disk, u, p["mg"], kscale[todo])
        ok = np.isfinite(d[todo])
        xyz = galaxy.to_galactocentric(u[ok], d[todo][ok])
        # [Fe/H] follows from where the star landed, which changes M_G a little: iterate on the stars
        # whose G leaves the limits.
        feh[todo[ok]] = np.clip(galaxy.mean_feh(np.hypot(xyz[:, 0], xyz[:, 1]), np.abs(xyz[:, 2]))
                                + eps[todo[ok]], -2.5, 0.6)
        p = parameters(kind[todo], var[todo], feh[todo])
        av = galaxy.extinction_av(disk, d[todo], galaxy.sin_b(u), kscale[todo])
        g = p["mg"] + 5 * np.log10(d[todo] * 100) + AG_PER_AV * av
        bad = ~ok | ~((g >= disk.g_min) & (g <= disk.g_max))
        todo = todo[bad]
    if len(todo):  # pathological leftovers: drop them rather than loop forever
        keep = np.setdiff1d(np.arange(n), todo)
        kind, var, feh, ra, dec, d, kscale = (a[keep] for a in (kind, var, feh, ra, dec, d, kscale))
    u = galaxy.unit_vectors(ra, dec)
    p = parameters(kind, var, feh)
    av = galaxy.extinction_av(disk, d, galaxy.sin_b(u), kscale)
    xyz = galaxy.to_galactocentric(u, d)
    thin, thick = galaxy.densities(disk, xyz)
    thick_pop = rng.random(len(d)) < thick / np.maximum(thin + thick, 1e-300)
    ebprp = EBPRP_PER_AV * av
    ag = AG_PER_EBPRP * ebprp
    out = {"kind": kind.astype(np.int8), "thick": thick_pop, "ra": ra, "dec": dec, "dist_pc": d * 1000.0,
           "feh": feh, "av": av, "ag": ag, "ebprp": ebprp,
           "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "r": np.hypot(xyz[:, 0], xyz[:, 1])}
    out.update(p)
    out["alpha_m"] = np.where(thick_pop, 0.22, 0.03) - 0.1 * np.clip(feh, -1, 0.3) + 0.03 * rng.standard_normal(len(d))
    out["g"] = out["mg"] + 5 * np.log10(out["dist_pc"]) - 5 + ag
    out["bprp"] = out["bprp0"] + ebprp
    # Space motions: rv and proper motions from disk-like dispersions, larger for the thick disk.
    sig = np.where(thick_pop, 55.0, 28.0)
    out["rv"] = sig * rng.standard_normal(len(d))
    vt = sig[:, None] * rng.standard_normal((len(d), 2))
    out["pmra"] = vt[:, 0] / (4.74047 * d)
    out["pmdec"] = vt[:, 1] / (4.74047 * d)
    return out
