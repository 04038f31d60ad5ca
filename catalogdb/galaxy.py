"""Galactocentric X, Y, Z, R (pc) with astropy's default Galactocentric frame (Sect. 4.4)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import Galactocentric, SkyCoord


def galactocentric(ra: np.ndarray, dec: np.ndarray, distance_pc: np.ndarray) -> np.ndarray:
    """(n, 4) array of X, Y, Z and cylindrical R in pc; NaN where the distance is missing."""
    distance = np.asarray(distance_pc, dtype=float)
    good = np.isfinite(distance) & (distance > 0)
    out = np.full((len(distance), 4), np.nan)
    if good.any():
        coords = SkyCoord(ra=np.asarray(ra)[good] * u.deg, dec=np.asarray(dec)[good] * u.deg,
                          distance=distance[good] * u.pc, frame="icrs")
        gc = coords.transform_to(Galactocentric()).cartesian.xyz.to_value(u.pc)
        out[good, :3] = gc.T
        out[good, 3] = np.hypot(gc[0], gc[1])
    return out
