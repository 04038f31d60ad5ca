"""The mock galaxy: a thin and a thick exponential disk, the metallicity field and dust.

Positions are drawn per star along its line of sight from the disk density, restricted to the
distances at which the star's apparent G falls in the survey's magnitude range (a magnitude-limited
target list, like LAMOST's), so no stars are generated only to be thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from catalogdb import paper

# The injected field reproduces the paper's Table 3 (radial gradient by |Z|) and Table 4 (vertical by R).
TABLE3_Z = np.array(list(paper.RADIAL_GRADIENT))
TABLE3_SLOPE = np.array(list(paper.RADIAL_GRADIENT.values()))
TABLE4_R = np.array(list(paper.VERTICAL_GRADIENT))
TABLE4_SLOPE = np.array(list(paper.VERTICAL_GRADIENT.values()))

R_REF = 8.0  # kpc: reference radius of the metallicity polynomial
FEH_REF = 0.0  # dex: [Fe/H] at R_REF in the plane
FEH_SCATTER = 0.12  # dex: intrinsic scatter about the mean field

# ICRS -> Galactic rotation (Hipparcos/ICRS definition), for latitudes; astropy gives the same.
_GAL = np.array([
    [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
    [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
    [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669],
])
_OBLIQUITY = np.deg2rad(84381.406 / 3600.0)  # IAU 2006 obliquity at J2000, for ecl_lat


@dataclass(frozen=True)
class Disk:
    """Thin + thick disk parameters (kpc) and the survey limits used to place stars."""

    thin_h_r: float = 2.6
    thin_h_z: float = 0.30
    thick_h_r: float = 2.0
    thick_h_z: float = 0.90
    thick_local_fraction: float = 0.12
    r_min: float = 4.0  # no bulge/bar: inner Galaxy left empty
    r_max: float = 20.0
    dec_min: float = -10.0
    dec_max: float = 80.0
    g_min: float = 9.0
    g_max: float = 17.5
    # Soft faint-end selection: LAMOST's G distribution turns over near 16.5 rather than at the limit.
    g_turnover: float = 16.6
    g_turnover_width: float = 0.35
    dust_scale_height: float = 0.12  # kpc
    dust_av_per_kpc: float = 0.8  # mag/kpc in the plane, scattered per sightline

    def as_dict(self) -> dict:
        """The parameters as a JSON-ready dict."""
        return dict(self.__dict__)


@cache
def galactocentric_transform() -> tuple[np.ndarray, np.ndarray]:
    """(M, t) with x_galcen = M @ x_icrs + t in kpc, for astropy's default Galactocentric frame."""
    import astropy.coordinates as coord
    import astropy.units as u

    pts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    c = coord.SkyCoord(x=pts[:, 0] * u.kpc, y=pts[:, 1] * u.kpc, z=pts[:, 2] * u.kpc,
                       frame="icrs", representation_type="cartesian")
    g = c.transform_to(coord.Galactocentric())  # astropy's default frame: the paper's X, Y, Z, R
    xyz = np.vstack([g.x.to_value(u.kpc), g.y.to_value(u.kpc), g.z.to_value(u.kpc)]).T
    t = xyz[0]
    return (xyz[1:] - t).T, t


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """ICRS unit vectors (n, 3) for ra, dec in degrees."""
    a, d = np.deg2rad(ra), np.deg2rad(dec)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def sin_b(u: np.ndarray) -> np.ndarray:
    """sin(Galactic latitude) of ICRS unit vectors."""
    return u @ _GAL[2]


def ecliptic_latitude(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Ecliptic latitude (deg) of ICRS positions (J2000 mean ecliptic)."""
    u = unit_vectors(ra, dec)
    s = -np.sin(_OBLIQUITY) * u[:, 1] + np.cos(_OBLIQUITY) * u[:, 2]
    return np.rad2deg(np.arcsin(np.clip(s, -1, 1)))


def galactic_lb(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactic l, b (deg)."""
    g = unit_vectors(ra, dec) @ _GAL.T
    return np.rad2deg(np.arctan2(g[:, 1], g[:, 0])) % 360.0, np.rad2deg(np.arcsin(np.clip(g[:, 2], -1, 1)))


def to_galactocentric(u: np.ndarray, d_kpc: np.ndarray) -> np.ndarray:
    """Galactocentric X, Y, Z (kpc) of stars at unit vector u and distance d."""
    m, t = galactocentric_transform()
    return (u * np.asarray(d_kpc)[..., None]) @ m.T + t


def densities(disk: Disk, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thin and thick disk number densities (arbitrary units, equal to 1 and f at the sun's R in the plane)."""
    r = np.hypot(xyz[..., 0], xyz[..., 1])
    z = np.abs(xyz[..., 2])
    r0 = -galactocentric_transform()[1][0]
    inside = (r >= disk.r_min) & (r <= disk.r_max)
    thin = np.exp(-(r - r0) / disk.thin_h_r - z / disk.thin_h_z)
    thick = disk.thick_local_fraction * np.exp(-(r - r0) / disk.thick_h_r - z / disk.thick_h_z)
    return np.where(inside, thin, 0.0), np.where(inside, thick, 0.0)


def extinction_av(disk: Disk, d_kpc: np.ndarray, sinb: np.ndarray, k_scale: np.ndarray) -> np.ndarray:
    """A_V (mag) to distance d through a dust layer of exponential scale height."""
    s = np.maximum(np.abs(sinb), 1e-3)
    h = disk.dust_scale_height
    return disk.dust_av_per_kpc * k_scale * h / s * (1.0 - np.exp(-d_kpc * s / h))


# --- metallicity field -------------------------------------------------------------------------------

def _basis_derivatives(dr: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d/dR and d/d|Z| of the polynomial basis [dR, z, dR z, dR z^2, dR z^3, z^2, dR^2 z, dR^2 z^2].

    No pure dR^2 term: in the plane the radial gradient is the same at every R, so a sample near the sun
    measures the same slope as one spread over 7-14 kpc.
    """
    o, zz = np.zeros_like(dr), np.ones_like(dr)
    d_dr = np.stack([zz, o, z, z**2, z**3, o, 2 * dr * z, 2 * dr * z**2], axis=-1)
    d_dz = np.stack([o, zz, dr, 2 * dr * z, 3 * dr * z**2, 2 * z, dr**2, 2 * dr**2 * z], axis=-1)
    return d_dr, d_dz


BASIS_NAMES = ["dR", "z", "dR*z", "dR*z^2", "dR*z^3", "z^2", "dR^2*z", "dR^2*z^2"]


def _basis(dr: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.stack([dr, z, dr * z, dr * z**2, dr * z**3, z**2, dr**2 * z, dr**2 * z**2], axis=-1)


@cache
def feh_coefficients() -> tuple[float, ...]:
    """Coefficients of the mean [Fe/H](R, |Z|) polynomial, fitted so that its R-averaged radial
    slopes match Table 3 and its |Z|-averaged vertical slopes match Table 4 of the paper."""
    rows, rhs = [], []
    rgrid = np.linspace(7.0, 14.0, 71) - R_REF
    zgrid = np.linspace(0.0, 2.0, 41)
    for z, a in zip(TABLE3_Z, TABLE3_SLOPE, strict=True):
        rows.append(_basis_derivatives(rgrid, np.full_like(rgrid, z))[0].mean(axis=0))
        rhs.append(a)
    for r, b in zip(TABLE4_R, TABLE4_SLOPE, strict=True):
        rows.append(_basis_derivatives(np.full_like(zgrid, r - R_REF), zgrid)[1].mean(axis=0))
        rhs.append(b)
    coef, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    return tuple(float(c) for c in coef)


def mean_feh(r_kpc: np.ndarray, absz_kpc: np.ndarray) -> np.ndarray:
    """The injected mean [Fe/H] at Galactocentric radius R and height |Z|."""
    return FEH_REF + _basis(np.asarray(r_kpc) - R_REF, np.asarray(absz_kpc)) @ np.array(feh_coefficients())


def model_slopes() -> dict:
    """The injected model's radial slopes per |Z| bin and vertical slopes per R bin (dex/kpc)."""
    coef = np.array(feh_coefficients())
    rgrid = np.linspace(7.0, 14.0, 71) - R_REF
    zgrid = np.linspace(0.0, 2.0, 41)
    radial = [float(_basis_derivatives(rgrid, np.full_like(rgrid, z))[0].mean(axis=0) @ coef) for z in TABLE3_Z]
    vertical = [float(_basis_derivatives(np.full_like(zgrid, r - R_REF), zgrid)[1].mean(axis=0) @ coef)
                for r in TABLE4_R]
    return {"radial": radial, "vertical": vertical}
