"""Errors meant for people: the CLI prints the message on one line and exits non-zero, no traceback."""


class CatalogdbError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class BadInput(CatalogdbError):
    """An input file or value cannot be used (names file, row, column, what was expected)."""

    exit_code = 2
