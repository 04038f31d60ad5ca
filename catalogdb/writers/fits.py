"""FITS: a primary HDU and one BINTABLE with TUNIT/TUCD/TCOMM, streamed (rows spooled to learn the sizes)."""

from __future__ import annotations

import math
import pickle
import tempfile
from collections.abc import Iterable, Iterator

import numpy as np

from catalogdb.writers.fields import Field, text_value

INT_NULL = {"short": -(2**15), "int": -(2**31), "long": -(2**63)}
_FITS = {"short": ("I", ">i2"), "int": ("J", ">i4"), "long": ("K", ">i8"), "float": ("E", ">f4"),
         "double": ("D", ">f8"), "boolean": ("L", "S1")}


def fits_header(fields: list[Field], nrows: int, widths: dict[str, int], extname: str = "RESULTS") -> bytes:
    """Primary HDU plus the BINTABLE header: TTYPE/TFORM/TUNIT/TNULL, and TUCD/TCOMM for UCD and description."""
    from astropy.io import fits

    cols = []
    for f in fields:
        form = _FITS.get(f.datatype, (f"{max(widths.get(f.name, 1), 1)}A", None))[0]
        kw = {"null": INT_NULL[f.datatype]} if f.datatype in INT_NULL else {}
        cols.append(fits.Column(name=f.name, format=form, unit=f.unit or None, **kw))
    hdu = fits.BinTableHDU.from_columns(cols, nrows=0)
    header = hdu.header
    header["NAXIS2"] = nrows
    header["EXTNAME"] = extname
    for i, f in enumerate(fields, start=1):
        if f.ucd:
            header[f"TUCD{i}"] = f.ucd
        if f.description:
            header[f"TCOMM{i}"] = f.description[:68]
    primary = fits.PrimaryHDU().header.tostring().encode()
    return primary + header.tostring().encode()


def _fits_dtype(fields: list[Field], widths: dict[str, int]) -> np.dtype:
    return np.dtype([(f"c{i}", _FITS[f.datatype][1] if f.datatype in _FITS else f"S{max(widths.get(f.name, 1), 1)}")
                     for i, f in enumerate(fields)])


def fits_rows(fields: list[Field], widths: dict[str, int], batches: Iterable[list[tuple]]) -> Iterator[bytes]:
    """The big-endian rows of the BINTABLE, padded to a 2880-byte block at the end."""
    dtype = _fits_dtype(fields, widths)
    written = 0
    for batch in batches:
        if not batch:
            continue
        arr = np.zeros(len(batch), dtype=dtype)
        for i, f in enumerate(fields):
            values = [row[i] for row in batch]
            key = f"c{i}"
            if f.datatype in INT_NULL:
                arr[key] = [INT_NULL[f.datatype] if v is None else v for v in values]
            elif f.datatype in ("float", "double"):
                arr[key] = [math.nan if v is None else v for v in values]
            elif f.datatype == "boolean":
                arr[key] = [b"\0" if v is None else (b"T" if v else b"F") for v in values]
            else:
                arr[key] = [b"" if v is None else text_value(v).encode() for v in values]
        data = arr.tobytes()
        written += len(data)
        yield data
    if written % 2880:
        yield b"\0" * (2880 - written % 2880)


def fits_file(fields: list[Field], batches: Iterable[list[tuple]], extname: str = "RESULTS") -> Iterator[bytes]:
    """A whole FITS file, streamed: the batches go to a temporary file while the row count and the widths of
    the text columns (which the header needs first) are found, then header and rows are written from it."""
    text = [i for i, f in enumerate(fields) if f.datatype not in _FITS]
    widths = dict.fromkeys((fields[i].name for i in text), 1)
    nrows = 0
    with tempfile.TemporaryFile() as spool:
        for batch in batches:
            for i in text:
                name = fields[i].name
                longest = max((len(text_value(r[i]).encode()) for r in batch if r[i] is not None), default=1)
                widths[name] = max(widths[name], longest)
            nrows += len(batch)
            pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
        spool.seek(0)

        def spooled() -> Iterator[list[tuple]]:
            while True:
                try:
                    yield pickle.load(spool)  # noqa: S301 - our own file, written just above
                except EOFError:
                    return

        yield fits_header(fields, nrows, widths, extname)
        yield from fits_rows(fields, widths, spooled())
