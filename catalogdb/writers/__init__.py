"""Table writers, registered once per format (as astropy's unified I/O registry does) and shared by TAP and export.

Each writer turns an `Output` (fields with their declared metadata, rows in batches) into a stream of bytes, so
neither the service nor the exports ever hold a whole result: VOTable (TABLEDATA or BINARY2), CSV, ECSV, FITS
and Parquet. Readers are their counterpart for ingest (catalogdb.readers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from catalogdb.writers.fields import Field, ResultStatus, fields_for


@dataclass
class Output:
    """A result to write: its fields, its rows in batches, and what the formats can say about it."""

    fields: list[Field]
    batches: Iterable[list[tuple]]
    status: ResultStatus
    name: str = "RESULTS"  # the table's name: FITS EXTNAME, ECSV and Parquet metadata
    infos: tuple[tuple[str, str], ...] = ()  # VOTable INFO elements of the results
    serialization: str = "tabledata"  # VOTable: tabledata or binary2
    resources: str = ""  # VOTable: further RESOURCE elements (DataLink service descriptors)


@dataclass(frozen=True)
class Writer:
    """A registered format: its name, MIME type, file suffixes and the function that streams an Output."""

    name: str
    media_type: str
    suffixes: tuple[str, ...]
    write: Callable[[Output], Iterator[bytes]]


WRITERS: dict[str, Writer] = {}


def register_writer(name: str, media_type: str, suffixes: tuple[str, ...] = ()):
    """Decorator registering a function Output -> bytes chunks as the writer of format `name`."""
    def register(write: Callable[[Output], Iterator[bytes]]) -> Callable[[Output], Iterator[bytes]]:
        WRITERS[name] = Writer(name, media_type, suffixes, write)
        return write
    return register


def writer_for_suffix(suffix: str) -> Writer | None:
    """The writer whose files end in `suffix` (.fits, .xml, ...), if any."""
    return next((w for w in WRITERS.values() if suffix.lower() in w.suffixes), None)


from catalogdb.writers import fits, parquet, text, votable  # noqa: E402 - each registers its writers


@register_writer("votable", "application/x-votable+xml", (".xml", ".vot", ".votable"))
def _votable(out: Output) -> Iterator[bytes]:
    return votable.votable(out.fields, out.batches, out.status, out.infos, out.serialization, out.resources)


@register_writer("csv", "text/csv")
def _csv(out: Output) -> Iterator[bytes]:
    return text.csv_rows(out.fields, out.batches, out.status)


@register_writer("ecsv", "text/x-ecsv", (".ecsv", ".csv"))
def _ecsv(out: Output) -> Iterator[bytes]:
    return text.ecsv_rows(out.fields, out.batches, out.name)


@register_writer("fits", "application/fits", (".fits", ".fit"))
def _fits(out: Output) -> Iterator[bytes]:
    return fits.fits_file(out.fields, out.batches, out.name)


@register_writer("parquet", "application/vnd.apache.parquet", (".parquet", ".pq"))
def _parquet(out: Output) -> Iterator[bytes]:
    return parquet.parquet_rows(out.fields, out.batches, out.name)


__all__ = ["WRITERS", "Field", "Output", "ResultStatus", "Writer", "fields_for", "register_writer",
           "writer_for_suffix"]
