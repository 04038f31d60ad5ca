"""Survey table readers: CSV/ECSV (plain or gzip), FITS binary tables, VOTable and Parquet, in row chunks.

Each format registers its reader once (`register_reader`, in the manner of astropy's unified I/O registry):
how its content is recognised, how a file is opened (its columns: name, unit, whether it holds an array per
row) and how the requested columns are read as pyarrow tables, a chunk at a time, with the 1-based data row of
every row. `detect_format` and `open_table` look formats up there. Structural problems (unreadable, truncated,
not a table) raise BadInput naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalogdb.errors import BadInput

CHUNK_ROWS = 100_000
CSV_BLOCK_BYTES = 8 << 20
FITS_BLOCK_BYTES = 64 << 20  # a FITS read is whole rows: wide rows (allStar: 5.4 kB) get fewer per chunk


@dataclass
class FileColumn:
    """One column as the file declares it."""

    name: str
    unit: str | None = None
    array: bool = False


@dataclass
class Chunk:
    """A block of rows: columns under their file names, and each row's 1-based data row number."""

    table: pa.Table
    rows: np.ndarray


@dataclass
class InvalidRow:
    """A text line that could not be split into the header's columns."""

    row: int
    text: str
    reason: str


class Opened(NamedTuple):
    """What a reader learns on opening a file: its columns, row count (when known) and its own handle on it."""

    columns: dict[str, FileColumn]
    total_rows: int | None
    handle: object  # the CSV dialect, the FITS row layout, the astropy Table or the ParquetFile


@dataclass(frozen=True)
class Reader:
    """A table format: how its content is recognised, how a file is opened and how it is read in chunks."""

    name: str  # "<name>.gz" is the same format gzip-compressed
    title: str
    identify: Callable[[bytes], bool]  # the first 4 kB of the (decompressed) file
    open: Callable[[Path, str, int], Opened]  # (path, format, FITS HDU)
    chunks: Callable[[TableFile, list[str], int], Iterator[Chunk]]  # (file, file column names, rows per chunk)


READERS: dict[str, Reader] = {}  # in detection order: the first format that identifies a file's head is its format


def register_reader(name: str, title: str, identify: Callable[[bytes], bool],
                    chunks: Callable[[TableFile, list[str], int], Iterator[Chunk]]):
    """Decorator registering an open function as the reader of format `name`."""
    def register(open_file: Callable[[Path, str, int], Opened]) -> Callable[[Path, str, int], Opened]:
        READERS[name] = Reader(name, title, identify, open_file, chunks)
        return open_file
    return register


@dataclass
class TableFile:
    """An opened survey file: its format, columns, (when known) row count and the reader that reads it."""

    path: Path
    format: str
    columns: dict[str, FileColumn]
    reader: Reader
    handle: object
    total_rows: int | None = None
    invalid_rows: list[InvalidRow] = field(default_factory=list)

    def chunks(self, names: list[str], chunk_rows: int | None = None) -> Iterator[Chunk]:
        """Yield the named columns in chunks (CHUNK_ROWS rows, at most FITS_BLOCK_BYTES of FITS rows, CSV blocks)."""
        return self.reader.chunks(self, names, chunk_rows or CHUNK_ROWS)


def _bad(path: Path, what: str) -> BadInput:
    return BadInput(f"{path}: {what}")


def detect_format(path: Path) -> str:
    """fits, votable, parquet, ecsv or csv, with '.gz' appended when gzip-compressed (by content)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise _bad(path, f"cannot read the file ({exc.strerror})") from None
    if not head:
        raise _bad(path, "the file is empty; expected a table")
    suffix = ""
    if head[:2] == b"\x1f\x8b":
        suffix = ".gz"
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(4096)
        except (OSError, EOFError, zlib.error) as exc:
            raise _bad(path, f"cannot decompress the gzip file ({exc}); expected a gzip-compressed table") from None
        if not head:
            raise _bad(path, "the compressed file is empty; expected a table")
    for reader in READERS.values():
        if reader.identify(head):
            return reader.name + suffix
    titles = [r.title for r in READERS.values()]
    raise _bad(path, f"not a table: unrecognised binary file; expected {', '.join(titles[:-1])} or {titles[-1]}")


def open_table(path: Path, fmt: str, fits_hdu: int = 1) -> TableFile:
    """Open a file of the detected format and read its column list."""
    reader = READERS.get(fmt.removesuffix(".gz"))
    if reader is None:
        raise _bad(path, f"unsupported format {fmt}")
    opened = reader.open(path, fmt, fits_hdu)
    return TableFile(path, fmt, opened.columns, reader, opened.handle, opened.total_rows)


# --- FITS binary tables: the data area read in row blocks, so memory stays bounded ---------------------


_FITS_NUMERIC = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8", "L": "i1"}


def _fits_column(raw: np.ndarray, nrows: int, width: int, spec) -> pa.Array:
    name, code, repeat, pos, size, bscale, bzero, null = spec
    block = raw.reshape(nrows, width)[:, pos:pos + size]
    if code == "A":
        values = np.ascontiguousarray(block).view(f"S{size}").reshape(nrows)
        return pc.utf8_rtrim_whitespace(pa.array(values, type=pa.binary()).cast(pa.string()))
    dtype = np.dtype(_FITS_NUMERIC[code])
    values = np.ascontiguousarray(block).view(dtype).reshape(nrows)
    if code == "L":
        mask = values == 0
        return pa.array(values == ord("T"), mask=mask)
    native = values.astype(dtype.newbyteorder("="))
    mask = None
    if null is not None and code in "BIJK":
        mask = native == null
    if (bscale not in (None, 1)) or (bzero not in (None, 0)):
        if code == "K" and bzero == 2**63 and bscale in (None, 1):
            native = native.view(np.uint64) ^ np.uint64(2**63)  # unsigned 64-bit convention
        elif code in "BIJK" and bscale in (None, 1) and float(bzero).is_integer():
            native = native.astype(np.int64) + int(bzero)
        else:
            native = native * (bscale if bscale is not None else 1) + (bzero or 0)
    return pa.array(native, mask=mask)


def _fits_chunks(table: TableFile, wanted: list[str], chunk_rows: int) -> Iterator[Chunk]:
    offset, width, nrows, layout = table.handle
    specs = [layout[n.lower()] for n in wanted]
    # Rows are read whole, unmapped (array) columns included, and only the wanted bytes decoded: bound the
    # block by bytes so memory does not grow with the row width.
    chunk_rows = max(1, min(chunk_rows, FITS_BLOCK_BYTES // max(width, 1)))
    opener = gzip.open if table.format.endswith(".gz") else open
    try:
        with opener(table.path, "rb") as handle:
            handle.seek(offset)
            done = 0
            while done < nrows:
                n = min(chunk_rows, nrows - done)
                buf = handle.read(n * width)
                if len(buf) < n * width:
                    raise _bad(table.path, f"the file is truncated: expected {nrows:,} rows, the data ends "
                                           f"in row {done + len(buf) // width + 1:,}")
                raw = np.frombuffer(buf, dtype=np.uint8)
                arrays = [_fits_column(raw, n, width, s) for s in specs]
                yield Chunk(pa.Table.from_arrays(arrays, names=[s[0] for s in specs]),
                            np.arange(done + 1, done + n + 1, dtype=np.int64))
                done += n
    except (OSError, EOFError, zlib.error) as exc:
        raise _bad(table.path, f"cannot read the FITS data ({exc}); the file may be truncated") from None


@register_reader("fits", "FITS", lambda head: head.startswith(b"SIMPLE  ="), _fits_chunks)
def _open_fits(path: Path, fmt: str, hdu_index: int) -> Opened:
    import warnings

    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                try:
                    hdu = hdul[hdu_index]
                except IndexError:
                    raise _bad(path, f"not a table: the FITS file has no HDU {hdu_index}; expected a binary "
                                     f"table there") from None
                if not isinstance(hdu, fits.BinTableHDU):
                    raise _bad(path, f"not a table: HDU {hdu_index} is a {type(hdu).__name__}, expected a "
                                     "binary table (BinTableHDU)")
                header = hdu.header
                info = hdu.fileinfo()
                cols = hdu.columns
                specs = []
                for c in cols:
                    specs.append((c.name, c.format, c.unit, c.bscale, c.bzero, c.null, c.dim))
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for a broken file
        raise _bad(path, f"cannot read the FITS file ({exc}); expected a FITS binary table") from None
    nrows, width = int(header["NAXIS2"]), int(header["NAXIS1"])
    offset = int(info["datLoc"])
    columns: dict[str, FileColumn] = {}
    layout = []
    pos = 0
    for name, form, unit, bscale, bzero, null, _dim in specs:
        code, repeat = form.format, int(form.repeat)
        size = int(form.dtype.itemsize) if code != "A" else repeat
        if code in ("P", "Q"):
            size = 8 if code == "P" else 16
        layout.append((name, code, repeat, pos, size, bscale, bzero, null))
        pos += size
        columns[name.lower()] = FileColumn(name, unit or None, array=code != "A" and repeat != 1)
    if pos != width:
        raise _bad(path, f"HDU {hdu_index} rows are {width} bytes but its columns add up to {pos}; "
                         "expected a valid binary table")
    if not fmt.endswith(".gz"):
        size = path.stat().st_size
        if size < offset + width * nrows:
            raise _bad(path, f"the file is truncated: HDU {hdu_index} declares {nrows:,} rows of {width} bytes "
                             f"({offset + width * nrows:,} bytes with headers) but the file has {size:,} bytes")
    return Opened(columns, nrows, (offset, width, nrows, {x[0].lower(): x for x in layout}))


# --- Parquet: pyarrow row groups ---------------------------------------------------------------------


def _parquet_chunks(table: TableFile, wanted: list[str], chunk_rows: int) -> Iterator[Chunk]:
    pf = table.handle
    done = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
            n = batch.num_rows
            yield Chunk(pa.Table.from_batches([batch]), np.arange(done + 1, done + n + 1, dtype=np.int64))
            done += n
    except (pa.ArrowInvalid, OSError) as exc:
        raise _bad(table.path, f"cannot read the Parquet data ({exc}); the file may be truncated") from None


@register_reader("parquet", "Parquet", lambda head: head.startswith(b"PAR1"), _parquet_chunks)
def _open_parquet(path: Path, fmt: str, _hdu: int) -> Opened:
    import pyarrow.parquet as pq

    if fmt.endswith(".gz"):
        raise _bad(path, "gzip-compressed Parquet is not supported; expected a plain .parquet file")
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _bad(path, f"cannot read the Parquet file ({exc}); the file may be truncated") from None
    units: dict[str, str | None] = {}
    meta = pf.schema_arrow.metadata or {}
    if b"table_meta_yaml" in meta:  # astropy writes its ECSV-style header here, units included
        from astropy.table.meta import get_header_from_yaml

        try:
            header = get_header_from_yaml(meta[b"table_meta_yaml"].decode().splitlines())
            units = {c["name"]: c.get("unit") for c in header.get("datatype", [])}
        except Exception:  # noqa: BLE001 - unit metadata is optional
            units = {}
    columns = {}
    for f in pf.schema_arrow:
        unit = units.get(f.name) or ((f.metadata or {}).get(b"unit", b"").decode() or None)
        columns[f.name.lower()] = FileColumn(f.name, unit, array=pa.types.is_list(f.type)
                                             or pa.types.is_fixed_size_list(f.type))
    return Opened(columns, pf.metadata.num_rows, pf)


# --- VOTable: astropy, the whole table in memory -------------------------------------------------------


def _astropy_column(col) -> pa.Array:
    values = np.asarray(col)
    mask = np.asarray(col.mask) if hasattr(col, "mask") and np.ndim(col.mask) else None
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8", "replace")
    if values.dtype.kind == "O":
        return pa.array([None if (mask is not None and m) else v for v, m in
                         zip(values, mask if mask is not None else [False] * len(values), strict=True)])
    if values.dtype.kind in "iuf" and values.dtype.byteorder == ">":
        values = values.astype(values.dtype.newbyteorder("="))
    return pa.array(values, mask=mask)


def _astropy_chunks(table: TableFile, wanted: list[str], chunk_rows: int) -> Iterator[Chunk]:
    data = table.handle
    for start in range(0, len(data), chunk_rows):
        part = data[start:start + chunk_rows]
        arrays = [_astropy_column(part[n]) for n in wanted]
        yield Chunk(pa.Table.from_arrays(arrays, names=wanted),
                    np.arange(start + 1, start + len(part) + 1, dtype=np.int64))


@register_reader("votable", "VOTable", lambda head: head.lstrip().startswith(b"<?xml") or b"<VOTABLE" in head,
                 _astropy_chunks)
def _open_votable(path: Path, fmt: str, _hdu: int) -> Opened:
    import warnings

    from astropy.io.votable import parse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _text_stream(path, fmt) as source:
                tables = list(parse(source).iter_tables())
            if not tables:
                raise _bad(path, "not a table: the VOTable has no TABLE element")
            data = tables[0].to_table(use_names_over_ids=True)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for broken XML
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _bad(path, f"cannot read the VOTable ({msg}); expected a complete VOTable document") from None
    columns = {n.lower(): FileColumn(n, str(data[n].unit) if data[n].unit is not None else None,
                                     array=data[n].ndim > 1) for n in data.colnames}
    return Opened(columns, len(data), data)


# --- CSV and ECSV: pyarrow's streaming reader; an ECSV header supplies units and the delimiter ---------


def _text_stream(path: Path, fmt: str):
    return gzip.open(path, "rb") if fmt.endswith(".gz") else open(path, "rb")


class _LineFinder:
    """Physical line numbers of malformed lines (pyarrow's streaming reader does not give them)."""

    def __init__(self, table: TableFile):
        self.table = table
        self.handle = None
        self.line = 0

    def find(self, text: str) -> int:
        """1-based line number of the next line equal to `text` (searching on from the last one found)."""
        want = text.encode("utf-8")
        for attempt in range(2):
            if self.handle is None or attempt:
                if self.handle is not None:
                    self.handle.close()
                self.handle, self.line = _text_stream(self.table.path, self.table.format), 0
            for raw in self.handle:
                self.line += 1
                if raw.rstrip(b"\r\n") == want:
                    return self.line
        return -1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _csv_chunks(table: TableFile, wanted: list[str], chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow.csv as pcsv

    skip, delimiter, names = table.handle
    first_data_line = skip + 2  # physical line number of data row 1
    invalid = table.invalid_rows
    finder = _LineFinder(table)

    def on_invalid(row) -> str:
        line = row.number if row.number and row.number > 0 else finder.find(row.text)
        invalid.append(InvalidRow(line - first_data_line + 1 if line > 0 else -1, row.text[:300],
                                  f"has {row.actual_columns} fields, expected {row.expected_columns}"))
        return "skip"

    read = pcsv.ReadOptions(skip_rows=skip + 1, column_names=names, block_size=CSV_BLOCK_BYTES)
    parse = pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=False)
    convert = pcsv.ConvertOptions(column_types={n: pa.string() for n in wanted}, include_columns=wanted,
                                  null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)
    emitted = 0
    try:
        reader = pcsv.open_csv(table.path, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            n = batch.num_rows
            rows = np.arange(emitted + 1, emitted + n + 1, dtype=np.int64)
            if invalid:
                # malformed lines were left out: shift later rows so row numbers stay the file's data rows
                bad = np.sort(np.array([r.row for r in invalid if r.row > 0], dtype=np.int64))
                valid_before = bad - 1 - np.arange(len(bad))
                rows = rows + np.searchsorted(valid_before, rows - 1, side="right")
            emitted += n
            yield Chunk(pa.Table.from_batches([batch]), rows)
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
        msg = str(exc).splitlines()[0]
        raise _bad(table.path, f"cannot read the file as {table.format} ({msg}); the file may be truncated or "
                               "corrupt") from None
    finally:
        finder.close()


def _is_ecsv(head: bytes) -> bool:
    return b"\x00" not in head and head.startswith(b"# %ECSV")


@register_reader("csv", "CSV", lambda head: b"\x00" not in head and not _is_ecsv(head), _csv_chunks)
@register_reader("ecsv", "ECSV", _is_ecsv, _csv_chunks)
def _open_csv(path: Path, fmt: str, _hdu: int) -> Opened:
    comments: list[str] = []
    try:
        with _text_stream(path, fmt) as handle:
            line = handle.readline()
            while line.startswith(b"#"):
                comments.append(line.decode("utf-8", "replace").rstrip("\r\n"))
                line = handle.readline()
            header = line.decode("utf-8", "replace").rstrip("\r\n")
    except (OSError, EOFError, zlib.error) as exc:
        raise _bad(path, f"cannot read the file ({exc})") from None
    units: dict[str, str | None] = {}
    delimiter = None
    if comments and comments[0].startswith("# %ECSV"):
        from astropy.table.meta import get_header_from_yaml

        try:
            meta = get_header_from_yaml([c[2:] for c in comments[1:]])
        except Exception as exc:  # noqa: BLE001 - any YAML problem is a bad ECSV header
            raise _bad(path, f"the ECSV header cannot be parsed ({exc})") from None
        delimiter = meta.get("delimiter", " ")
        units = {c["name"]: c.get("unit") for c in meta.get("datatype", [])}
    if not header.strip():
        raise _bad(path, "not a table: no header line with column names")
    if delimiter is None:
        counts = {d: header.count(d) for d in (",", "|", "\t", ";")}
        delimiter = max(counts, key=counts.get)
        if counts[delimiter] == 0:
            delimiter = ","
    names = [n.strip().strip('"') for n in header.split(delimiter)]
    columns = {n.lower(): FileColumn(n, units.get(n)) for n in names}
    return Opened(columns, None, (len(comments), delimiter, names))


__all__ = ["READERS", "Chunk", "FileColumn", "InvalidRow", "Opened", "Reader", "TableFile", "detect_format",
           "open_table", "register_reader"]
