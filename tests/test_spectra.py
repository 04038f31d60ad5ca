"""LAMOST spectrum reader and preprocessing: real fixtures, both layouts, bad files, the reference."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from catalogdb import spectra
from catalogdb.spectra import GRID, SpectrumError, preprocess, process_file, process_files, read_spectrum
from conftest import FIXTURES

sys.path.insert(0, str(Path(__file__).parent))
from spectra_reference import preprocess_reference, read_reference, widen_runs  # noqa: E402

LRS = FIXTURES / "lamost_lrs"
FILES = sorted(LRS.glob("*.fits"))
OLD_LAYOUT = LRS / "spec-58397-EG014118N254444M01_sp03-031.fits"


def test_the_eleven_real_fixtures_are_in_the_repository():
    assert len(FILES) == 11 and OLD_LAYOUT in FILES


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[int, np.ndarray, int]]:
    """The notebook's loop code on every fixture (slow: computed once)."""
    return {p.name: preprocess_reference(p) for p in FILES}


def test_fixtures_cover_both_layouts():
    with fits.open(OLD_LAYOUT) as hdu:
        assert hdu[0].data.shape[0] == 5 and "COADD" not in hdu
    with fits.open(FILES[0]) as hdu:
        assert "COADD" in hdu


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reader_matches_astropy(path):
    spec = read_spectrum(path)
    obsid, z, arrays = read_reference(path)
    assert spec.obsid == obsid and spec.z == z
    for got, want in zip((spec.flux, spec.ivar, spec.wavelength, spec.andmask, spec.ormask), arrays, strict=True):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
    with fits.open(path) as hdu:
        header = hdu[0].header
        assert spec.snrg == header["SNRG"] and spec.snrr == header["SNRR"]
        assert spec.header["DESIG"] == header["DESIG"]
        assert spec.header["OBSID"] == header["OBSID"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_preprocess_equals_reference(path, reference):
    obsid, want, want_flag = reference[path.name]
    result = process_file(path)
    assert result.reason is None
    assert result.obsid == obsid
    assert result.flux.dtype == np.float32 and result.flux.shape == (4875,) == GRID.shape
    assert np.isfinite(result.flux).all()
    assert result.flag == want_flag
    np.testing.assert_allclose(result.flux, want, rtol=0, atol=1e-6)  # float32 of values <= 1.2: <= 6e-8 off
    # before the float32 cast the two agree far closer: the same fits, not just similar ones. The reference's
    # np.polyfit on raw wavelengths solves Vandermonde systems of condition ~3e6 (eps * cond = 6.5e-10), whose
    # rounding depends on the BLAS kernel (OPENBLAS_CORETYPE): 1e-8 leaves room for that, 100x inside float32
    got64, _ = spectra.normalise(read_spectrum(path))
    np.testing.assert_allclose(got64, want, rtol=0, atol=1e-8)


def test_normalised_flux_near_one_and_flags(reference):
    results = [process_file(p) for p in FILES]
    medians = np.array([np.median(r.flux) for r in results])
    # absorption lines pull the median of a continuum-normalised spectrum a little below 1
    assert np.all((medians > 0.9) & (medians < 1.0)), medians
    assert 0.95 < np.median(medians) < 0.98  # the 11 fixtures: medians 0.938-0.982, their median 0.967
    flags = {r.path.rsplit("/", 1)[-1]: r.flag for r in results}
    # the low-S/N spectra are the ones with pixels out of [0.1, 1.2]
    assert flags["3713226.fits"] == 1 and flags[OLD_LAYOUT.name] == 0
    assert all(r.flux.max() <= 1.2 and r.flux.min() >= 0.1 for r in results)


def test_flagged_pixels_are_set_to_one(reference):
    _, want, flag = reference["3703110.fits"]
    assert flag == 1
    result = process_file(LRS / "3703110.fits")
    assert result.flag == 1 and np.count_nonzero(result.flux == 1.0) > 0


def test_ormask_pixel_is_dropped():
    spec = read_spectrum(LRS / "3712166.fits")
    assert np.count_nonzero(spec.ormask) == 1
    # the same spectrum with that pixel unmasked gives a different result: the mask is applied
    unmasked = spectra.LamostSpectrum(**{f: getattr(spec, f) for f in spec.__slots__ if f != "ormask"},
                                      ormask=np.zeros_like(spec.ormask))
    assert not np.array_equal(preprocess(spec)[0], preprocess(unmasked)[0])


def test_gzipped_copy_reads_the_same(tmp_path):
    for path in (LRS / "3706009.fits", OLD_LAYOUT):
        gz = tmp_path / (path.name + ".gz")
        gz.write_bytes(gzip.compress(path.read_bytes()))
        plain, packed = process_file(path), process_file(gz)
        assert packed.reason is None
        np.testing.assert_array_equal(plain.flux, packed.flux)
        assert packed.obsid == plain.obsid and packed.checksum != plain.checksum


@pytest.mark.parametrize("cut", [100, 5000, 40000, 100000])
def test_truncated_file_is_a_rejection(tmp_path, cut):
    bad = tmp_path / "truncated.fits"
    bad.write_bytes((LRS / "3706009.fits").read_bytes()[:cut])
    result = process_file(bad)
    assert result.flux is None
    assert "truncated" in result.reason
    with pytest.raises(SpectrumError, match="truncated"):
        read_spectrum(bad)


def test_truncated_gzip_is_a_rejection(tmp_path):
    bad = tmp_path / "truncated.fits.gz"
    bad.write_bytes(gzip.compress((LRS / "3706009.fits").read_bytes())[:20000])
    result = process_file(bad)
    assert result.flux is None and result.reason


def test_random_bytes_are_a_rejection(tmp_path):
    bad = tmp_path / "random.fits"
    bad.write_bytes(np.random.default_rng(1).bytes(30000))
    result = process_file(bad)
    assert result.flux is None and result.reason == "not a FITS file (no SIMPLE card)"
    assert len(result.checksum) == 64


def test_missing_file_is_a_rejection(tmp_path):
    result = process_file(tmp_path / "nope.fits")
    assert result.flux is None and result.reason.startswith("cannot read file") and result.checksum == ""


def _write_table(path, header_cards, columns):
    primary = fits.PrimaryHDU()
    for key, value in header_cards.items():
        primary.header[key] = value
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f"{len(v)}E", array=v[None, :]) for n, v in columns.items()], name="COADD"
    )
    fits.HDUList([primary, table]).writeto(path)


def _columns_of(path):
    _, _, (flux, ivar, wave, andmask, ormask) = read_reference(path)
    return {"FLUX": flux, "IVAR": ivar, "WAVELENGTH": wave, "ANDMASK": andmask, "ORMASK": ormask}


def test_missing_obsid_is_a_rejection(tmp_path):
    path = tmp_path / "no_obsid.fits"
    _write_table(path, {"Z": 0.0, "SNRG": 20.0}, _columns_of(LRS / "3706009.fits"))
    result = process_file(path)
    assert result.flux is None and result.reason == "header has no OBSID"


def test_wavelength_not_covering_grid_is_a_rejection(tmp_path):
    columns = _columns_of(LRS / "3706009.fits")
    keep = columns["WAVELENGTH"] > 4100  # a spectrum starting redward of 3925 A
    path = tmp_path / "short.fits"
    _write_table(path, {"OBSID": 7, "Z": 0.0}, {k: v[keep] for k, v in columns.items()})
    result = process_file(path)
    assert result.flux is None and result.obsid == 7
    assert "do not cover 3925-8799 A" in result.reason


def test_redshift_moving_spectrum_off_the_grid_is_a_rejection(tmp_path):
    path = tmp_path / "z.fits"
    _write_table(path, {"OBSID": 8, "Z": 0.05}, _columns_of(LRS / "3706009.fits"))
    assert "do not cover" in process_file(path).reason


def test_all_pixels_masked_is_a_rejection(tmp_path):
    columns = _columns_of(LRS / "3706009.fits")
    columns["ANDMASK"] = np.ones_like(columns["ANDMASK"])
    path = tmp_path / "masked.fits"
    _write_table(path, {"OBSID": 9, "Z": 0.0}, columns)
    result = process_file(path)
    assert result.flux is None and result.reason == "all pixels are masked (ANDMASK/ORMASK)"


def test_nan_flux_is_a_rejection(tmp_path):
    columns = _columns_of(LRS / "3706009.fits")
    columns["FLUX"][1000] = np.nan
    path = tmp_path / "nan.fits"
    _write_table(path, {"OBSID": 10, "Z": 0.0}, columns)
    assert "non-finite" in process_file(path).reason


def test_widened_runs_match_the_notebook_loop():
    outlier = np.zeros(30, dtype=bool)
    outlier[[0, 5, 6, 7, 12, 13, 20, 29]] = True
    # runs of n pixels widen by n - 1, stopping short of the neighbouring runs' outliers
    assert np.flatnonzero(spectra._widened_runs(outlier)).tolist() == [0, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14,
                                                                       20, 29]
    rng = np.random.default_rng(5)
    for density in (0.02, 0.1, 0.3, 0.7):
        for _ in range(50):
            outlier = rng.random(200) < density
            left, right = widen_runs(np.flatnonzero(outlier), outlier.size)
            want = np.zeros(outlier.size, dtype=bool)
            for lo, hi in zip(left, right, strict=True):
                want[lo : hi + 1] = True
            np.testing.assert_array_equal(spectra._widened_runs(outlier), want)


def test_process_files_in_a_pool_yields_every_file(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"SIMPLE  = nonsense")
    paths = [*FILES, bad] * 3
    results = list(process_files(paths, workers=2, chunksize=4))
    assert sorted(r.path for r in results) == sorted(str(p) for p in paths)
    by_path = {r.path: r for r in results}
    assert by_path[str(bad)].flux is None
    serial = process_file(FILES[0])
    np.testing.assert_array_equal(by_path[str(FILES[0])].flux, serial.flux)
    assert by_path[str(FILES[0])].checksum == serial.checksum


def test_process_files_serial():
    results = list(process_files(FILES[:2], workers=1))
    assert [r.path for r in results] == [str(p) for p in FILES[:2]]


@pytest.mark.parametrize("size", [15, 16, 29, 30, 31, 47, 1000, 3909])
def test_smoothing_equals_scipy_savgol(size):
    from scipy.signal import savgol_filter

    # scipy fits the edges by least squares on a degree-7 Vandermonde matrix (columns scaled as polyfit
    # does): how that fit rounds depends on the BLAS kernel (OPENBLAS_CORETYPE), and a backward-stable
    # solve is good to eps * cond(V) * max|flux|. That bound is the tolerance; the interior is a
    # 15-term dot product, far inside it.
    vander = np.vander(np.arange(15.0), 8)
    cond = np.linalg.cond(vander / np.sqrt((vander * vander).sum(axis=0)))  # ~7.6e4
    for flux in (np.random.default_rng(size).normal(100.0, 10.0, size), read_spectrum(FILES[0]).flux):
        atol = np.finfo(float).eps * cond * np.abs(flux).max()
        np.testing.assert_allclose(spectra._smooth(flux), savgol_filter(flux, 15, 7), rtol=0, atol=atol)
