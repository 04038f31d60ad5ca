"""Bad rows of a file: the first raised as BadInput (abort), or all written to <file>.rejects.csv (skip)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from catalogdb.errors import BadInput


def show(v) -> str:
    """A file value as a message or reject file shows it."""
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


class Rejects:
    """Bad rows of one file: raise on the first (abort) or write them to <file>.rejects.csv (skip)."""

    def __init__(self, path: Path, on_error: str, file_columns: list[str]):
        self.path, self.on_error, self.file_columns = path, on_error, file_columns
        self.out = path.with_name(path.name + ".rejects.csv")
        if not os.access(path.parent, os.W_OK):  # a read-only download folder: use the current one
            self.out = Path.cwd() / self.out.name
        self.count = 0
        self._handle = None
        self._writer = None

    def bad(self, items: list[tuple[int, str, str, str]], values: list[dict] | None = None) -> None:
        """Record bad rows: (row, column, value, expectation) and optionally each row's file values."""
        if not items:
            return
        if self.on_error == "abort":
            row, column, value, reason = min(items, key=lambda t: (t[0] < 0, t[0]))
            where = f"row {row}" if row > 0 else "a row"
            what = f"line {value!r} {reason}" if column == "(line)" else f"column {column}: value {value!r} {reason}"
            exc = BadInput(f"{self.path}: {where}, {what} (use --on-error skip to load the other rows)")
            exc.row = row
            raise exc
        if self._writer is None:
            self._handle = open(self.out, "w", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["row", "column", "value", "reason", *self.file_columns])
        for i, (row, column, value, reason) in enumerate(items):
            extra = values[i] if values else {}
            self._writer.writerow([row, column, value, reason, *(extra.get(c, "") for c in self.file_columns)])
        self.count += len(items)

    def close(self) -> Path | None:
        """Close the reject file; its path when any row was rejected."""
        if self._handle:
            self._handle.close()
        return self.out if self.count else None

    def reset(self) -> None:
        """Forget what was written (a file read again from the start)."""
        if self._handle:
            self._handle.close()
            self.out.unlink(missing_ok=True)
        self._handle = self._writer = None
        self.count = 0
