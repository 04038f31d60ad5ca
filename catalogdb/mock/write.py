"""Write the mock survey: catalogue files streamed chunk by chunk, spectra, and the truth."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from catalogdb.mock import apogee, gaia, galaxy, lamost
from catalogdb.mock import spectra as mspectra
from catalogdb.mock import stars as mstars
from catalogdb.mock.comparisons import write_comparisons
from catalogdb.mock.files import (
    APOGEE_FILE,
    BJ_FILE,
    GAIA_FILE,
    GAIA_HATS,
    LAMOST_FILE,
    SPECTRA_DIR,
    CsvWriter,
    FitsTableWriter,
)
from catalogdb.mock.galaxy import Disk

CHUNK = 200_000  # stars per chunk: bounds memory at any --stars, and fixes the random streams
SPECTRA_BATCH = 500
SPECTRA_MODES = ("all", "training", "targets", "none")
Progress = Callable[[str, int, int], None]


def default_apogee_fraction(stars_: int) -> float:
    """Share of LAMOST stars also in APOGEE: ~1 % (the paper's ratio) for large surveys, more for small ones
    so the training set is not empty (20,000 stars give ~2,500 APOGEE stars, >1,000 training spectra)."""
    return float(min(0.5, max(0.01, 2500.0 / max(stars_, 1))))


class Regressions:
    """Running least-squares sums for [Fe/H] = a x + b in bins (Tables 3 and 4), chunk by chunk."""

    def __init__(self, nbins: int) -> None:
        self.s = np.zeros((nbins, 6))  # n, sx, sy, sxx, sxy, syy

    def add(self, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Add points (x, y) to bins b (-1 = none)."""
        ok = b >= 0
        for k, v in enumerate((np.ones(ok.sum()), x[ok], y[ok], x[ok] ** 2, x[ok] * y[ok], y[ok] ** 2)):
            self.s[:, k] += np.bincount(b[ok], weights=v, minlength=len(self.s))

    def fits(self) -> list[dict]:
        """Slope, its standard error, intercept, its standard error and N per bin (scipy linregress)."""
        out = []
        for n, sx, sy, sxx, sxy, syy in self.s:
            if n < 3:
                out.append({"slope": None, "slope_err": None, "intercept": None, "intercept_err": None, "n": int(n)})
                continue
            xm, ym = sx / n, sy / n
            ssx, ssxy, ssy = sxx - n * xm**2, sxy - n * xm * ym, syy - n * ym**2
            slope = ssxy / ssx
            err = np.sqrt(max(ssy - slope * ssxy, 0.0) / (n - 2) / ssx)
            out.append({"slope": slope, "slope_err": err, "intercept": ym - slope * xm,
                        "intercept_err": err * np.sqrt(ssx / n + xm**2), "n": int(n)})
        return out


def _rngs(seed: int, chunk: int) -> list[np.random.Generator]:
    ss = np.random.SeedSequence(seed, spawn_key=(chunk,))
    return [np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(6)]


def write_survey(out: Path, stars: int = 20000, seed: int = 1, spectra: str = "all",
                 progress: Progress | None = None, apogee_fraction: float | None = None,
                 gaia_hats: bool = False) -> dict:
    """Simulate a galaxy and write it as LAMOST, Gaia, Bailer-Jones and APOGEE files plus the truth.

    With gaia_hats, the Gaia table is also written as a HATS catalogue (GAIA_HATS) that LSDB reads.
    """
    if spectra not in SPECTRA_MODES:
        raise ValueError(f"spectra must be one of {', '.join(SPECTRA_MODES)}, not {spectra!r}")
    if stars < 1:
        raise ValueError("stars must be at least 1")
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    disk = Disk()
    frac = default_apogee_fraction(stars) if apogee_fraction is None else float(apogee_fraction)
    spec_mod = spectra

    lam_w = FitsTableWriter(out / LAMOST_FILE, lamost.LAMOST_DTYPE, lamost.UNITS)
    apo_w = FitsTableWriter(out / APOGEE_FILE, apogee.APOGEE_DTYPE, apogee.UNITS)
    gaia_w = CsvWriter(out / GAIA_FILE, gaia.GAIA_COLUMNS)
    bj_w = CsvWriter(out / BJ_FILE, gaia.BJ_COLUMNS)
    truth_w: pq.ParquetWriter | None = None
    radial = Regressions(len(galaxy.TABLE3_Z))
    vertical = Regressions(len(galaxy.TABLE4_R))
    counts = {"stars": 0, "lamost_rows": 0, "gaia_rows": 0, "gaia_field_rows": 0, "bailer_jones_rows": 0,
              "apogee_rows": 0, "apogee_stars": 0, "spectra_files": 0, "solar_like_true": 0}
    nchunks = (stars + CHUNK - 1) // CHUNK
    for c in range(nchunks):
        r_star, r_gaia, r_lam, r_apo, r_spec, r_field = _rngs(seed, c)
        n = min(CHUNK, stars - c * CHUNK)
        s = stars_draw(r_star, n, disk)
        idx = c * CHUNK + np.arange(n)

        ids = gaia.source_ids(r_gaia, 2 * idx)
        grow = gaia.gaia_rows(r_gaia, s, ids)
        mu = s["g"] - s["ag"] - s["mg"] + r_gaia.normal(0, 0.25, n)
        bj = gaia.bailer_jones(r_gaia, grow, mu, np.full(n, 0.25))
        parent, fs = gaia.field_neighbours(r_field, s)
        fids = gaia.source_ids(r_field, 2 * idx[parent] + 1)
        frow = gaia.gaia_rows(r_field, fs, fids, field=True)
        fmu = 5 * np.log10(fs["dist_pc"]) - 5 + r_field.normal(0, 0.6, len(fids))
        fbj = gaia.bailer_jones(r_field, frow, fmu, np.full(len(fids), 0.6))
        gaia_w.write(_interleave(grow, frow, parent))
        bj_w.write({k: np.concatenate([bj[k], fbj[k]]) for k in bj})

        # LAMOST gives a Gaia source_id for most stars; a few have none (-9999).
        linked = r_lam.random(n) >= 0.03
        lam_gid = np.where(linked, ids, np.int64(lamost.SENTINEL))
        lam_g = np.where(linked, grow["phot_g_mean_mag"], lamost.SENTINEL)
        rec, ex = lamost.observations(r_lam, s, idx, lam_gid, lam_g, counts["lamost_rows"])
        lam_w.write(rec)

        aidx = apogee.select(r_apo, s["g"], frac)
        l_, b_ = galaxy.galactic_lb(s["ra"], s["dec"])
        arows = apogee.rows(r_apo, s, aidx, ids, l_, b_, int(round(0.1 * len(aidx))))
        apo_w.write(arows)
        in_apogee = np.zeros(n, bool)
        in_apogee[aidx] = True
        apogee_id = np.full(n, "", dtype=object)
        apogee_id[aidx] = [a.decode() for a in arows["APOGEE_ID"][: len(aidx)]]

        # Spectra for the chosen rows.
        want = _spectra_rows(spec_mod, rec, ex, s, grow, in_apogee)
        nspec = np.zeros(n, np.int64)
        spectra_before = counts["spectra_files"]
        if want.size:
            npix = mspectra.npix_for(r_spec, len(want))
            for a in range(0, len(want), SPECTRA_BATCH):
                w = want[a:a + SPECTRA_BATCH]
                st = ex["star"][w]
                sp = mspectra.synthesize(r_spec, s["teff"][st], s["logg"][st], s["feh"][st], s["alpha_m"][st],
                                            ex["rv_true"][w], ex["snr5"][w], s["g"][st])
                mspectra.write_files(out / SPECTRA_DIR, rec[w], sp, npix[a:a + SPECTRA_BATCH])
                counts["spectra_files"] += len(w)
                if progress:  # total = spectra known so far (exact when --stars fits in one chunk)
                    progress("spectra", counts["spectra_files"], spectra_before + len(want))
            np.add.at(nspec, ex["star"][want], 1)

        sl = mstars.solar_like(s["teff"], s["logg"], s["feh"])
        absz = np.abs(s["z"])
        inr = (s["r"] >= 7) & (s["r"] <= 14)
        zb = np.where(sl & inr & (absz < 2), np.minimum((absz / 0.2).astype(int), 9), -1)
        radial.add(zb, s["r"], s["feh"])
        rb = np.where(sl & inr & (absz <= 2), np.minimum((s["r"] - 7).astype(int), 6), -1)
        vertical.add(rb, absz, s["feh"])

        truth = _truth_table(s, idx, ids, grow, linked, in_apogee, apogee_id, ex["nobs"], nspec, sl)
        if truth_w is None:
            truth_w = pq.ParquetWriter(str(out / "truth.parquet"), truth.schema)
        truth_w.write_table(truth)

        counts["stars"] += n
        counts["lamost_rows"] += len(rec)
        counts["gaia_rows"] += n + len(fids)
        counts["gaia_field_rows"] += len(fids)
        counts["bailer_jones_rows"] += len(bj["source_id"]) + len(fbj["source_id"])
        counts["apogee_rows"] += len(arows)
        counts["apogee_stars"] += len(aidx)
        counts["solar_like_true"] += int(sl.sum())
        if progress:
            progress("catalogue", counts["stars"], stars)

    for w in (lam_w, apo_w, gaia_w, bj_w):
        w.close()
    assert truth_w is not None
    truth_w.close()

    model = {
        "seed": seed, "stars": stars, "spectra": spec_mod, "apogee_fraction": frac, "chunk_stars": CHUNK,
        "disk": disk.as_dict(),
        "sun_galactocentric_kpc": galaxy.galactocentric_transform()[1].tolist(),
        "kinds": {"fractions": dict(zip(mstars.KIND_NAMES, mstars.KIND_FRACTIONS, strict=True))},
        "metallicity": {
            "mean": "FEH_REF + sum(c_i * basis_i(R - R_REF, |Z|))",
            "basis": galaxy.BASIS_NAMES, "z": "|Z| in kpc", "dR": "R - R_REF in kpc",
            "coefficients": list(galaxy.feh_coefficients()), "R_REF_kpc": galaxy.R_REF,
            "FEH_REF": galaxy.FEH_REF, "intrinsic_scatter_dex": galaxy.FEH_SCATTER,
            "same_for_thin_and_thick_disk": True,
        },
        "gradients": {
            "radial": _gradient_rows("abs_z_kpc", galaxy.TABLE3_Z, galaxy.TABLE3_SLOPE,
                                     galaxy.model_slopes()["radial"], radial.fits()),
            "vertical": _gradient_rows("r_kpc", galaxy.TABLE4_R, galaxy.TABLE4_SLOPE,
                                       galaxy.model_slopes()["vertical"], vertical.fits()),
            "note": "paper: PAPER.md Tables 3/4; injected: the model's slope averaged uniformly over the bin's "
                    "range of the other coordinate; truth_sample: scipy-linregress-equivalent fit to the true "
                    "[Fe/H], R, |Z| of all truly solar-like mock stars in the bin",
        },
        "extinction": {"A_G_per_A_V": mstars.AG_PER_AV, "E_BPRP_per_A_V": mstars.EBPRP_PER_AV,
                       "A_G_per_E_BPRP": mstars.AG_PER_EBPRP},
        "gaia": {"parallax_error_mas": "sqrt(40 + 800 z + 30 z^2)/1000, z = 10^(0.4 (max(G,13) - 15))",
                 "parallax_zero_point": "Lindegren et al. 2021 (gaiadr3-zeropoint), injected",
                 "bailer_jones_prior": f"EDSD, L = {gaia.BJ_PRIOR_LENGTH_PC} pc"},
        "counts": counts,
    }
    (out / "truth.json").write_text(json.dumps(model, indent=2, default=_json_default))
    files = {LAMOST_FILE: counts["lamost_rows"], GAIA_FILE: counts["gaia_rows"], BJ_FILE: counts["bailer_jones_rows"],
             APOGEE_FILE: counts["apogee_rows"], "truth.parquet": counts["stars"], "truth.json": 1}
    if counts["spectra_files"]:
        files[SPECTRA_DIR + "/"] = counts["spectra_files"]
    files.update(write_comparisons(out, seed))
    if gaia_hats:
        from catalogdb.hats import csv_to_hats

        csv_to_hats(out / GAIA_FILE, out / GAIA_HATS, dict(gaia.GAIA_COLUMNS))
        files[GAIA_HATS + "/"] = counts["gaia_rows"]
    return {"out": str(out), "files": files, **counts, "seconds": round(time.perf_counter() - t0, 2)}


def stars_draw(rng: np.random.Generator, n: int, disk: Disk) -> dict[str, np.ndarray]:
    """Exactly n stars (draw_stars may drop a rare star it cannot place)."""
    s = mstars.draw_stars(rng, n, disk)
    while len(s["ra"]) < n:
        more = mstars.draw_stars(rng, n - len(s["ra"]) + 8, disk)
        s = {k: np.concatenate([s[k], more[k]]) for k in s}
    return {k: v[:n] for k, v in s.items()}


def _interleave(rows: dict, field: dict, parent: np.ndarray) -> dict:
    """Target rows followed by their field neighbours, each neighbour right after its target."""
    n, m = len(rows["source_id"]), len(field["source_id"])
    order = np.argsort(np.concatenate([np.arange(n) * 2, parent * 2 + 1]), kind="stable")
    return {k: np.concatenate([rows[k], field[k]])[order] for k in rows if k in field and n + m}


def _spectra_rows(mode: str, rec: np.ndarray, ex: dict, s: dict, grow: dict, in_apogee: np.ndarray) -> np.ndarray:
    """Catalogue rows that get a spectrum file under --spectra MODE."""
    m = len(rec)
    if mode == "none":
        return np.zeros(0, np.int64)
    if mode == "all":
        return np.arange(m)
    st = ex["star"]
    training = in_apogee[st]
    if mode == "training":
        return np.flatnonzero(training)
    teff, logg, feh = rec["teff"], rec["logg"], rec["feh"]
    sl = mstars.solar_like(teff, logg, feh) & (teff != lamost.SENTINEL)
    poe = grow["parallax_over_error"][st]
    problem = ~np.isfinite(poe) | (poe <= 5) | ~np.isfinite(grow["distance_gspphot"][st]) | \
        (rec["gaia_source_id"] == lamost.SENTINEL)
    return np.flatnonzero(training | (sl & (rec["snrg"] >= 10) & problem))


def _truth_table(s: dict, idx: np.ndarray, ids: np.ndarray, grow: dict, linked: np.ndarray,
                 in_apogee: np.ndarray, apogee_id: np.ndarray, nobs: np.ndarray, nspec: np.ndarray,
                 sl: np.ndarray) -> pa.Table:
    kind = np.array(mstars.KIND_NAMES)[s["kind"]]
    cols = {
        "uid": lamost.uids(idx).astype(str), "source_id": ids, "ra": s["ra"], "dec": s["dec"],
        "kind": kind, "population": np.where(s["thick"], "thick", "thin"),
        "teff": s["teff"], "logg": s["logg"], "feh": s["feh"], "alpha_m": s["alpha_m"], "mass": s["mass"],
        "radius": s["radius"], "mg": s["mg"], "bprp0": s["bprp0"], "av": s["av"], "ag": s["ag"],
        "ebprp": s["ebprp"], "g": s["g"], "bprp": s["bprp"], "distance_pc": s["dist_pc"],
        "x": s["x"], "y": s["y"], "z": s["z"], "r": s["r"], "rv": s["rv"],
        "parallax_true": 1000.0 / s["dist_pc"], "parallax_zeropoint": grow["_zp"],
        "solar_like": sl, "n_obs": nobs, "n_spectra_written": nspec,
        "in_lamost": np.ones(len(idx), bool), "lamost_has_gaia_id": linked, "in_gaia": np.ones(len(idx), bool),
        "has_parallax": np.isfinite(grow["parallax"]), "in_bailer_jones": np.isfinite(grow["parallax"]),
        "has_gspphot": np.isfinite(grow["distance_gspphot"]), "in_apogee": in_apogee,
        "apogee_id": apogee_id.astype(str),
    }
    return pa.table(cols)


def _gradient_rows(key: str, centres: np.ndarray, paper: np.ndarray, injected: list[float],
                   sample: list[dict]) -> list[dict]:
    return [{key: round(float(c), 3), "paper_slope": float(p), "injected_slope": float(i), "truth_sample": t}
            for c, p, i, t in zip(centres, paper, injected, sample, strict=True)]


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)
