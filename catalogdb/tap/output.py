"""A TAP result in the format the request asks for, through the shared writers (catalogdb.writers)."""

from __future__ import annotations

from collections.abc import Iterator

from catalogdb.tap import datalink
from catalogdb.tap.query import Result
from catalogdb.tap.request import TapParams
from catalogdb.writers import WRITERS, Output


def render(result: Result, params: TapParams, root: str | None = None) -> tuple[str, Iterator[bytes]]:
    """Content type and byte chunks of a result in the requested format (VOTables of obsids link to DataLink
    at the server whose base URL is `root`)."""
    fmt, serialization = params.output()
    fields, resources = datalink.descriptor(root, result.fields) if fmt == "votable" else (result.fields, "")
    out = Output(fields, result.batches(), result.status, infos=(("QUERY", params.query or ""),),
                 serialization=serialization or "tabledata", resources=resources)
    return params.content_type, WRITERS[fmt].write(out)
