"""Where the mock writes each survey file, and the chunked FITS and CSV writers it writes them with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

LAMOST_FILE = "lamost/dr9_v2.0_LRS_stellar.fits"
SPECTRA_DIR = "lamost/spectra"
GAIA_FILE = "gaia/gaia_dr3_source.csv"
GAIA_HATS = "gaia/gaia_dr3_hats"  # the same rows as HATS, for `xmatch --gaia-hats` (write_survey(gaia_hats=True))
BJ_FILE = "gaia/bailer_jones_edr3.csv"
APOGEE_FILE = "apogee/allStar-dr17-synspec_rev1.fits"
# The survey catalogues a mock writes, by the ingest source that loads each (in load order).
CATALOGUE_FILES = {"lamost-stellar": LAMOST_FILE, "gaia-dr3": GAIA_FILE, "bailer-jones": BJ_FILE,
                   "apogee-allstar": APOGEE_FILE}


class FitsTableWriter:
    """A FITS file with an empty primary HDU and one binary table whose rows are appended in chunks."""

    def __init__(self, path: Path, dtype: np.dtype, units: dict[str, str], extname: str | None = None) -> None:
        from astropy.io import fits

        self.dtype = np.dtype(dtype).newbyteorder(">")
        cols = fits.ColDefs(np.zeros(0, self.dtype))
        for c in cols:
            if c.name in units:
                c.unit = units[c.name]
        hdu = fits.BinTableHDU.from_columns(cols, nrows=0, name=extname)
        self.header = hdu.header
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "wb")  # noqa: SIM115 - closed in close()
        primary = fits.PrimaryHDU().header
        primary["ORIGIN"] = "catalogdb mock"
        self.f.write(primary.tostring().encode("ascii"))
        self.header_at = self.f.tell()
        self.f.write(self.header.tostring().encode("ascii"))
        self.rows = 0
        self.nbytes = 0

    def write(self, rec: np.ndarray) -> None:
        """Append rows (any byte order) to the table."""
        b = np.ascontiguousarray(rec.astype(self.dtype, copy=False)).tobytes()
        self.f.write(b)
        self.rows += len(rec)
        self.nbytes += len(b)

    def close(self) -> None:
        """Pad the data and write the final row count into the header."""
        self.f.write(b"\0" * ((-self.nbytes) % 2880))
        self.header["NAXIS2"] = self.rows
        self.f.seek(self.header_at)
        self.f.write(self.header.tostring().encode("ascii"))  # same length: NAXIS2 is one fixed card
        self.f.close()


class CsvWriter:
    """A CSV file written as the Gaia archive does: unquoted header, empty fields for NULL."""

    def __init__(self, path: Path, columns: list[tuple[str, pa.DataType]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = pa.schema(columns)
        self.f = open(path, "wb")  # noqa: SIM115 - closed in close()
        # pyarrow always quotes header names; the archive does not, so the header is written here.
        self.f.write((",".join(self.schema.names) + "\n").encode("ascii"))
        opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
        self.w = pacsv.CSVWriter(self.f, self.schema, write_options=opts)
        self.rows = 0

    def write(self, cols: dict[str, np.ndarray]) -> None:
        """Append rows given as NaN-for-NULL numpy columns."""
        arrays = []
        for f in self.schema:
            v = np.asarray(cols[f.name])
            mask = np.isnan(v) if v.dtype.kind == "f" else None
            arrays.append(pa.array(v, type=f.type, mask=mask, from_pandas=False))
        self.w.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += len(arrays[0])

    def close(self) -> None:
        """Finish the file."""
        self.w.close()
        self.f.close()
