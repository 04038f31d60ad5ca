"""The real column sets of the APOGEE DR17 allStar file and the LAMOST DR9 v2.0 LRS stellar catalogue, and writers.

The mocks in apogee.py and lamost.py write only the columns the pipeline reads; these layouts carry every
column of the published files (names, FITS types, array shapes, units) with random but valid values, so
ingest is measured and tested on files as wide as the ones astronomers download.

APOGEE DR17 allStar (allStar-dr17-synspec_rev1.fits, HDU 1, 733,901 rows): the SDSS data model,
github.com/sdss/datamodel, datamodel/products/json/allStar.json, release DR17, hdus.hdu1.columns: 234
columns, their order, types (char[N], int32, int64, float32, float64, <type>[N]) and units as written
there (quirks included: "degrees", "log (cgs)", "(cgs)", the *_FLAG columns' "dex"). The data model gives
array columns flattened (float32[189]); their shapes come from the pipeline that wrote the file,
github.com/sdss/apogee, python/apogee/aspcap/aspcap.py: FPARAM_GRID (ngrids, nparam), CHI2_GRID (ngrids,),
FPARAM/PARAM/PARAMFLAG (nparam,), FPARAM_COV/PARAM_COV (nparam, nparam), the element arrays (nelem,),
with nparam = 9, nelem = 27 and ngrids = 189 / 9 = 21 (DR17's HDU 3 GRIDS is char[420] = 21 x 20).

LAMOST DR9 v2.0 LRS stellar (dr9_v2.0_LRS_stellar.fits, ~7 million rows): no machine-readable data model
of this FITS file was found, so the set is assembled and its column order is plausible, not verified
against a real file. Names: LAMOST's catalogue schema page (dr7-test.lamost.org/doc/schema, "A,F,G and K
type stars catalog": obsid, designation, obsdate, lmjd, planid, spid, fiberid, snru..snrz, objtype, class,
subclass, magtype, mag1..mag7, tsource, fibertype, tfrom, ..., z, z_err) with the later releases' columns
(uid, gp_id, mjd, ra_obs, dec_obs, tcomment, offsets, offset_v, ra, dec, fibermask, with_norm_flux,
gaia_source_id, gaia_g_mean_mag) and the LASP parameters (teff .. alpha_m_err). Types and string widths:
LAMOST's SQL schema of its LRS tables (LRS_stellar, LRS_catalogue: bigint, int, smallint, numeric(6,2) ->
float32, numeric(16,10) -> float64, varchar(N) -> N characters), gaia_source_id included as varchar(25),
i.e. text. vsini_lasp: the DR10 v2.0 LRS stellar catalogue (same pipeline, one release later).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from catalogdb.mock.lamost import _digits, _join, designation

# (name, numpy type, per-row shape, unit): numpy types are the FITS ones (S<n> = <n>A, >i4 = J, >i8 = K,
# >f4 = E, >f8 = D); a shape () is a scalar.
Column = tuple[str, str, tuple[int, ...], str]

_ELEMENTS = ["C", "CI", "N", "O", "NA", "MG", "AL", "SI", "P", "S", "K", "CA", "TI", "TIII", "V", "CR", "MN",
             "FE", "CO", "NI", "CU", "CE", "YB"]
NPARAM, NELEM, NGRIDS = 9, 27, 21


def _abundances() -> list[Column]:
    # Per element: X_FE, X_FE_SPEC, X_FE_ERR, X_FE_FLAG ([Fe/H] is FE_H); Ce and Yb have no unit in the model.
    out: list[Column] = []
    for el in _ELEMENTS:
        name = "FE_H" if el == "FE" else f"{el}_FE"
        unit = "" if el in ("CE", "YB") else "dex"
        out += [(name, ">f4", (), unit), (f"{name}_SPEC", ">f4", (), ""), (f"{name}_ERR", ">f4", (), unit),
                (f"{name}_FLAG", ">i4", (), unit)]
    return out


def _floats(names: str, unit: str = "") -> list[Column]:
    return [(n, ">f4", (), unit) for n in names.split()]


ALLSTAR_DR17: list[Column] = [
    ("FILE", "S64", (), ""), ("APOGEE_ID", "S30", (), ""), ("TARGET_ID", "S58", (), ""),
    ("APSTAR_ID", "S71", (), ""), ("ASPCAP_ID", "S77", (), ""), ("TELESCOPE", "S6", (), ""),
    ("LOCATION_ID", ">i4", (), ""), ("FIELD", "S20", (), ""), ("ALT_ID", "S30", (), ""),
    ("RA", ">f8", (), "degrees"), ("DEC", ">f8", (), "degrees"), ("GLON", ">f8", (), "degrees"),
    ("GLAT", ">f8", (), "degrees"),
    *_floats("J J_ERR H H_ERR K K_ERR"), ("SRC_H", "S16", (), ""),
    *_floats("WASH_M WASH_M_ERR WASH_T2 WASH_T2_ERR DDO51 DDO51_ERR IRAC_3_6 IRAC_3_6_ERR IRAC_4_5 IRAC_4_5_ERR "
             "IRAC_5_8 IRAC_5_8_ERR IRAC_8_0 IRAC_8_0_ERR WISE_4_5 WISE_4_5_ERR TARG_4_5 TARG_4_5_ERR"),
    ("WASH_DDO51_GIANT_FLAG", ">i4", (), ""), ("WASH_DDO51_STAR_FLAG", ">i4", (), ""),
    *_floats("TARG_PMRA TARG_PMDEC"), ("TARG_PM_SRC", "S16", (), ""), *_floats("AK_TARG"),
    ("AK_TARG_METHOD", "S32", (), ""), *_floats("AK_WISE SFD_EBV"),
    *[(n, ">i4", (), "") for n in ("APOGEE_TARGET1", "APOGEE_TARGET2", "APOGEE2_TARGET1", "APOGEE2_TARGET2",
                                    "APOGEE2_TARGET3", "APOGEE2_TARGET4")],
    ("TARGFLAGS", "S132", (), ""), ("SURVEY", "S32", (), ""), ("PROGRAMNAME", "S32", (), ""),
    ("NVISITS", ">i4", (), ""), *_floats("SNR SNREV"), ("STARFLAG", ">i8", (), ""), ("STARFLAGS", "S132", (), ""),
    ("ANDFLAG", ">i8", (), ""), ("ANDFLAGS", "S132", (), ""), *_floats("VHELIO_AVG VSCATTER VERR", "km/s"),
    ("RV_TEFF", ">f4", (), "K"), ("RV_LOGG", ">f4", (), "log (cgs)"), *_floats("RV_FEH RV_ALPHA RV_CARB RV_CHI2"),
    *_floats("RV_CCFWHM RV_AUTOFWHM", "km/s"), ("RV_FLAG", ">i4", (), ""), ("N_COMPONENTS", ">i4", (), ""),
    *_floats("MEANFIB SIGFIB MIN_H MAX_H MIN_JK MAX_JK"), ("GAIAEDR3_SOURCE_ID", ">i8", (), ""),
    *_floats("GAIAEDR3_PARALLAX GAIAEDR3_PARALLAX_ERROR GAIAEDR3_PMRA GAIAEDR3_PMRA_ERROR GAIAEDR3_PMDEC "
             "GAIAEDR3_PMDEC_ERROR GAIAEDR3_PHOT_G_MEAN_MAG GAIAEDR3_PHOT_BP_MEAN_MAG GAIAEDR3_PHOT_RP_MEAN_MAG "
             "GAIAEDR3_DR2_RADIAL_VELOCITY GAIAEDR3_DR2_RADIAL_VELOCITY_ERROR GAIAEDR3_R_MED_GEO GAIAEDR3_R_LO_GEO "
             "GAIAEDR3_R_HI_GEO GAIAEDR3_R_MED_PHOTOGEO GAIAEDR3_R_LO_PHOTOGEO GAIAEDR3_R_HI_PHOTOGEO"),
    ("ASPCAP_GRID", "S8", (), ""), ("FPARAM_GRID", ">f4", (NGRIDS, NPARAM), ""), ("CHI2_GRID", ">f4", (NGRIDS,), ""),
    ("FPARAM", ">f4", (NPARAM,), ""), ("FPARAM_COV", ">f4", (NPARAM, NPARAM), ""), ("ASPCAP_CHI2", ">f4", (), ""),
    ("PARAM", ">f4", (NPARAM,), ""), ("PARAM_COV", ">f4", (NPARAM, NPARAM), ""), ("PARAMFLAG", ">i8", (NPARAM,), ""),
    ("ASPCAPFLAG", ">i8", (), ""), ("ASPCAPFLAGS", "S256", (), ""), *_floats("FRAC_BADPIX FRAC_LOWSNR FRAC_SIGSKY"),
    ("FELEM", ">f4", (NELEM,), ""), ("FELEM_ERR", ">f8", (NELEM,), ""),
    *[(n, ">f4", (NELEM,), "") for n in ("X_H", "X_H_ERR", "X_M", "X_M_ERR", "ELEM_CHI2", "ELEMFRAC")],
    ("ELEMFLAG", ">i8", (NELEM,), ""), ("EXTRATARG", ">i4", (), ""), ("MEMBERFLAG", ">i8", (), ""),
    ("MEMBER", "S10", (), ""), ("X_H_SPEC", ">f4", (NELEM,), ""), ("X_M_SPEC", ">f4", (NELEM,), ""),
    ("TEFF", ">f4", (), "K"), ("TEFF_ERR", ">f4", (), "K"), ("LOGG", ">f4", (), "log (cgs)"),
    ("LOGG_ERR", ">f4", (), "log (cgs)"), *_floats("M_H M_H_ERR ALPHA_M ALPHA_M_ERR", "dex"),
    *_floats("VMICRO VMACRO VSINI", "(cgs)"), *_floats("TEFF_SPEC LOGG_SPEC"),
    *_abundances(),
    ("VISIT_PK", ">i4", (100,), ""),
]
ALLSTAR_ROWS = 733_901  # rows of allStar-dr17-synspec_rev1.fits (SDSS DR17 APOGEE documentation)

LAMOST_DR9_STELLAR: list[Column] = [
    ("obsid", ">i8", (), ""), ("designation", "S19", (), ""), ("obsdate", "S10", (), ""), ("lmjd", ">i4", (), ""),
    ("mjd", ">i4", (), ""), ("planid", "S40", (), ""), ("spid", ">i4", (), ""), ("fiberid", ">i4", (), ""),
    ("ra_obs", ">f8", (), "deg"), ("dec_obs", ">f8", (), "deg"),
    *[(f"snr{b}", ">f4", (), "") for b in "ugriz"],
    ("objtype", "S16", (), ""), ("class", "S20", (), ""), ("subclass", "S20", (), ""), ("z", ">f8", (), ""),
    ("z_err", ">f8", (), ""), ("magtype", "S25", (), ""), *[(f"mag{i}", ">f4", (), "") for i in range(1, 8)],
    ("tsource", "S16", (), ""), ("fibertype", "S10", (), ""), ("tfrom", "S60", (), ""), ("tcomment", "S80", (), ""),
    ("offsets", ">i4", (), ""), ("offset_v", ">f4", (), ""), ("ra", ">f8", (), "deg"), ("dec", ">f8", (), "deg"),
    ("fibermask", ">i4", (), ""), ("with_norm_flux", ">i2", (), ""), ("gaia_source_id", "S25", (), ""),
    ("gaia_g_mean_mag", ">f4", (), "mag"), ("teff", ">f4", (), "K"), ("teff_err", ">f4", (), "K"),
    ("logg", ">f4", (), ""), ("logg_err", ">f4", (), ""), ("feh", ">f4", (), ""), ("feh_err", ">f4", (), ""),
    ("rv", ">f4", (), "km/s"), ("rv_err", ">f4", (), "km/s"), ("alpha_m", ">f4", (), ""),
    ("alpha_m_err", ">f4", (), ""), ("vsini_lasp", ">f4", (), "km/s"), ("uid", "S32", (), ""),
    ("gp_id", ">i8", (), ""),
]
LAMOST_ROWS = 7_000_000  # about the row count of dr9_v2.0_LRS_stellar.fits


def dtype_of(columns: list[Column]) -> np.dtype:
    """The FITS row layout (big-endian numpy record) of a column set."""
    return np.dtype([(n, t, s) if s else (n, t) for n, t, s, _ in columns])


def units_of(columns: list[Column]) -> dict[str, str]:
    """TUNIT per column, for the columns that have one."""
    return {n: u for n, _, _, u in columns if u}


# --- rows ------------------------------------------------------------------------------------------------

_RA_CELLS = 24 * 360_000  # APOGEE_ID resolves RA to 0.01 s: a distinct cell per star makes its ID distinct
_RA_STEP = 1_000_003  # prime, so k -> k * step mod cells is one-to-one for k < cells


def _star_position(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic (RA, Dec) per star index: distinct 0.01 s RA cells, Dec spread over the sphere."""
    cell = (k * _RA_STEP) % _RA_CELLS
    frac = (k * 0.6180339887498949) % 1.0
    ra = (cell + 0.25 + 0.5 * frac) / 360_000 * 15.0
    dec = np.rad2deg(np.arcsin(((k * 0.7548776662466927) % 1.0) * 1.9 - 0.95))
    return ra, dec


def _fill_random(rng: np.random.Generator, rec: np.ndarray) -> None:
    """Every numeric field random (normal floats, small ints); the caller then sets the meaningful ones."""
    n = len(rec)
    for name in rec.dtype.names:
        dt, shape = rec.dtype[name].base, rec.dtype[name].shape
        if dt.kind == "f":
            rec[name] = rng.standard_normal((n, *shape), dtype=np.float32)
        elif dt.kind == "i":
            rec[name] = rng.integers(0, 100, (n, *shape), dtype=np.int32)


def allstar_rows(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
    """Rows start..start+n of a DR17-layout allStar: every 50th row a second-field duplicate (EXTRATARG bit 4)."""
    rec = np.zeros(n, dtype_of(ALLSTAR_DR17))
    _fill_random(rng, rec)
    i = start + np.arange(n, dtype=np.int64)
    dup = (i % 50) == 49
    k = i - (i + 1) // 50  # star index: a duplicate row repeats the star of the row before it
    ra, dec = _star_position(k)
    cs = np.floor(ra / 15.0 * 360_000).astype(np.int64) % _RA_CELLS
    ds = np.floor(np.abs(dec) * 36_000).astype(np.int64)
    sign = np.where(dec < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    ids = _join(["2", "M", _digits(cs // 360_000, 2), _digits(cs // 6000 % 60, 2), _digits(cs % 6000, 4), sign,
                 _digits(ds // 36_000, 2), _digits(ds // 600 % 60, 2), _digits(ds % 600, 3)], n)
    rec["APOGEE_ID"] = ids
    rec["TELESCOPE"] = np.where(dec < -25, b"lco25m", np.where(k % 97 == 0, b"apo1m", b"apo25m"))
    cell = np.floor(ra / 6).astype(np.int64) * 100 + np.floor((dec + 90) / 6).astype(np.int64) + dup
    rec["FIELD"] = _join(["F", _digits(cell, 5)], n)  # a duplicate sits in the neighbouring field
    rec["FILE"] = np.char.add(np.char.add(b"apStar-dr17-", ids), b".fits")
    rec["APSTAR_ID"] = np.char.add(b"apogee.apo25m.stars.F.", ids)
    rec["ASPCAP_ID"] = np.char.add(b"apogee.apo25m.synspec_rev1.F.", ids)
    rec["TARGET_ID"] = np.char.add(b"apo25m.F.", ids)
    rec["RA"], rec["DEC"] = ra, dec
    rec["GLON"], rec["GLAT"] = (ra + 90) % 360, dec * 0.7
    rec["SRC_H"], rec["SURVEY"], rec["PROGRAMNAME"] = b"2MASS", b"apogee2", b"disk"
    rec["AK_TARG_METHOD"], rec["TARG_PM_SRC"] = b"RJCE_WISE", b"GAIA_EDR3"
    rec["SNR"] = np.exp(rng.normal(np.log(120), 0.6, n)).astype(np.float32)
    rec["NVISITS"] = rng.integers(1, 30, n)
    rec["STARFLAG"] = np.where(rng.random(n) < 0.05, 1 << 3, 0)
    rec["STARFLAGS"] = np.where(rec["STARFLAG"] != 0, b"BRIGHT_NEIGHBOR", b"")
    bad = rng.random(n) < 0.02
    rec["ASPCAPFLAG"] = np.where(bad, 1 << 23, 0)
    rec["ASPCAPFLAGS"] = np.where(bad, b"STAR_BAD", b"")
    rec["ASPCAP_GRID"] = b"GKg_b"
    rec["EXTRATARG"] = np.where(dup, 16, 0)
    rec["GAIAEDR3_SOURCE_ID"] = 10**18 + k
    teff = rng.uniform(3500, 8000, n).astype(np.float32)
    logg = rng.uniform(0.5, 5.0, n).astype(np.float32)
    feh = rng.normal(-0.2, 0.3, n).astype(np.float32)
    rec["TEFF"], rec["TEFF_ERR"] = teff, rng.uniform(20, 150, n)
    rec["LOGG"], rec["LOGG_ERR"] = logg, rng.uniform(0.02, 0.1, n)
    rec["FE_H"], rec["FE_H_ERR"] = feh, rng.uniform(0.005, 0.05, n)
    rec["M_H"], rec["M_H_ERR"] = feh + 0.01, rng.uniform(0.005, 0.05, n)
    for name in ("TEFF", "TEFF_ERR", "LOGG", "LOGG_ERR", "FE_H", "FE_H_ERR", "M_H", "M_H_ERR"):
        rec[name][bad] = np.nan
    rec["PARAM"][:, 0], rec["PARAM"][:, 1], rec["PARAM"][:, 3] = teff, logg, feh + 0.01
    rec["PARAM"][bad] = np.nan
    return rec


def lamost_rows(rng: np.random.Generator, start: int, n: int) -> np.ndarray:
    """Rows start..start+n of a DR9 v2.0-layout LRS stellar catalogue; obsid is unique across the file."""
    rec = np.zeros(n, dtype_of(LAMOST_DR9_STELLAR))
    _fill_random(rng, rec)
    i = start + np.arange(n, dtype=np.int64)
    rec["obsid"] = 101_001 + i
    star = i // 3  # repeat observations share uid and position
    ra, dec = _star_position(star)
    dec = -10.0 + (dec + 90.0) / 180.0 * 100.0  # LAMOST's sky: -10 .. 90 deg
    rec["ra"], rec["dec"] = ra, dec
    rec["ra_obs"], rec["dec_obs"] = ra, dec
    rec["designation"] = designation(ra, dec)
    rec["uid"] = _join(["G", _digits(star, 12)], n)
    rec["gp_id"] = star
    lmjd = rng.integers(55_800, 59_400, n)
    rec["lmjd"], rec["mjd"] = lmjd, lmjd - 1
    rec["obsdate"] = (np.datetime64("1858-11-17") + lmjd.astype("timedelta64[D]")).astype("S10")
    rec["planid"] = _join(["H", "D", _digits(lmjd % 10_000, 4), "N", _digits(star % 1000, 3), "B", "0", "1"], n)
    rec["spid"] = rng.integers(1, 17, n)
    rec["fiberid"] = rng.integers(1, 251, n)
    for b in "ugriz":
        rec[f"snr{b}"] = np.round(rng.uniform(2, 300, n), 2)
    rec["objtype"], rec["class"], rec["subclass"] = b"Star", b"STAR", b"G2"
    rec["magtype"], rec["tsource"], rec["fibertype"] = b"gri", b"LEGAS", b"Obj"
    rec["tfrom"], rec["tcomment"] = b"PanSTARRS", b""
    rec["z"], rec["z_err"] = rng.normal(0, 1e-4, n), rng.uniform(1e-6, 1e-4, n)
    rec["fibermask"] = np.where(rng.random(n) < 0.05, 2, 0)
    rec["with_norm_flux"] = 1
    gid = 10**18 + (i * 7919) % (5 * 10**18)  # 19 digits, as Gaia DR3 source_ids are
    missing = rng.random(n) < 0.03
    rec["gaia_source_id"] = np.where(missing, b"-9999", _join([_digits(gid, 19)], n))
    rec["gaia_g_mean_mag"] = np.where(missing, -9999.0, rng.uniform(9, 18, n))
    rec["teff"], rec["teff_err"] = rng.uniform(3800, 8500, n), rng.uniform(20, 300, n)
    rec["logg"], rec["logg_err"] = rng.uniform(0.5, 5.0, n), rng.uniform(0.02, 0.5, n)
    rec["feh"], rec["feh_err"] = rng.normal(-0.3, 0.3, n), rng.uniform(0.01, 0.3, n)
    rec["rv"], rec["rv_err"] = rng.normal(0, 40, n), rng.uniform(2, 20, n)
    rec["alpha_m"], rec["alpha_m_err"] = rng.normal(0.05, 0.08, n), rng.uniform(0.02, 0.1, n)
    fail = rng.random(n) < 0.004  # LASP failures: -9999, as LAMOST writes them
    for name in ("teff", "teff_err", "logg", "logg_err", "feh", "feh_err", "alpha_m", "alpha_m_err"):
        rec[name][fail] = -9999.0
    return rec


# --- files ----------------------------------------------------------------------------------------------

def write_file(path: Path, columns: list[Column], rows, n: int, chunk: int = 20_000, seed: int = 1) -> dict:
    """Stream n rows from `rows(rng, start, m)` to a FITS table of `columns` in chunks: rows, columns, bytes, s."""
    from catalogdb.mock.files import FitsTableWriter

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    writer = FitsTableWriter(Path(path), dtype_of(columns), units_of(columns))
    try:
        for start in range(0, n, chunk):
            writer.write(rows(rng, start, min(chunk, n - start)))
    finally:
        writer.close()
    return {"rows": n, "columns": len(columns), "bytes": Path(path).stat().st_size,
            "seconds": round(time.perf_counter() - t0, 1)}


def write_allstar(path: Path, n: int = ALLSTAR_ROWS, seed: int = 1) -> dict:
    """An allStar-dr17-synspec_rev1.fits with the DR17 column set and n rows."""
    return write_file(path, ALLSTAR_DR17, allstar_rows, n, chunk=10_000, seed=seed)


def write_lamost(path: Path, n: int = LAMOST_ROWS, seed: int = 2) -> dict:
    """A dr9_v2.0_LRS_stellar.fits with the DR9 v2.0 column set and n rows."""
    return write_file(path, LAMOST_DR9_STELLAR, lamost_rows, n, chunk=100_000, seed=seed)
