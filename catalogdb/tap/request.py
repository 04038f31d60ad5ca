"""TAP request parameters: case-insensitive names, unknown ones ignored, values checked with readable errors."""

from __future__ import annotations

from dataclasses import dataclass

LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")

# RESPONSEFORMAT / FORMAT values -> (format, serialization)
FORMATS = {
    "votable": ("votable", "tabledata"), "votable/td": ("votable", "tabledata"),
    "application/x-votable+xml": ("votable", "tabledata"), "text/xml": ("votable", "tabledata"),
    "application/x-votable+xml;serialization=tabledata": ("votable", "tabledata"),
    "votable/b2": ("votable", "binary2"), "votable/binary2": ("votable", "binary2"),
    "application/x-votable+xml;serialization=binary2": ("votable", "binary2"),
    "csv": ("csv", None), "text/csv": ("csv", None), "text/csv;header=present": ("csv", None),
    "fits": ("fits", None), "application/fits": ("fits", None), "image/fits": ("fits", None),
}
CONTENT_TYPES = {
    ("votable", "tabledata"): "application/x-votable+xml",
    ("votable", "binary2"): "application/x-votable+xml;serialization=BINARY2",
    ("csv", None): "text/csv;header=present",
    ("fits", None): "application/fits",
}


class TapRequestError(Exception):
    """A request parameter is missing or wrong; the message names it."""


@dataclass
class TapParams:
    """The parameters a TAP query uses."""

    request: str | None
    lang: str | None
    query: str | None
    format: str
    maxrec: int | None

    @classmethod
    def from_dict(cls, params: dict[str, str]) -> TapParams:
        """From lower-cased names; MAXREC is checked here, the rest by `check`."""
        if params.get("upload"):
            raise TapRequestError("UPLOAD not supported")
        raw = params.get("maxrec")
        maxrec = None
        if raw not in (None, ""):
            try:
                maxrec = int(str(raw).strip())
            except ValueError:
                raise TapRequestError(f"MAXREC must be a whole number, not {raw!r}") from None
            if maxrec < 0:
                raise TapRequestError("MAXREC must not be negative")
        fmt = params.get("responseformat") or params.get("format") or "votable"
        return cls(params.get("request"), params.get("lang"), params.get("query"), fmt, maxrec)

    def check(self) -> None:
        """Raise TapRequestError for anything a query cannot run with."""
        if self.request is not None and self.request.strip().lower() not in ("doquery", ""):
            raise TapRequestError(f"REQUEST={self.request} is not supported (use doQuery)")
        if not self.lang:
            raise TapRequestError("LANG is required (LANG=ADQL)")
        if self.lang.strip().upper() not in LANGS:
            raise TapRequestError(f"LANG={self.lang} is not supported (use ADQL)")
        if not self.query or not self.query.strip():
            raise TapRequestError("QUERY is required")
        self.output()

    def output(self) -> tuple[str, str | None]:
        """(format, serialization) of RESPONSEFORMAT/FORMAT."""
        key = self.format.strip().lower().replace(" ", "")
        if key not in FORMATS:
            raise TapRequestError(f"RESPONSEFORMAT={self.format} is not supported "
                                  "(votable, votable/b2, csv, fits)")
        return FORMATS[key]

    @property
    def content_type(self) -> str:
        """The media type of the response."""
        return CONTENT_TYPES[self.output()]
