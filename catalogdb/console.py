"""Rich tables for the terminal: SQL rows and label/value pairs, printed by the CLI and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_rows(console: Console, rows, title: str | None = None) -> None:
    """A SQL result as a rich table (nothing for no rows)."""
    rows = list(rows)
    if not rows:
        return
    table = Table(*rows[0]._mapping.keys(), title=title)
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int)
                        and not isinstance(v, bool) else str(v) for v in row))
    console.print(table)


def print_pairs(console: Console, rows: list[tuple[str, str]]) -> None:
    """Label/value pairs as a two-column table without a header."""
    table = Table(show_header=False)
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
