"""catalogdb: LAMOST solar-like stars, Gaia DR3 and a CNN, in PostgreSQL (Shen & Luo 2024)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("catalogdb")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
