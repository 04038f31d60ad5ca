"""Settings from the environment, and where catalogdb's own files (migrations, source specs) live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

# Package data, found through the installed package so that a wheel works as well as a checkout.
PACKAGE_DATA = files("catalogdb")
ALEMBIC_INI = Path(str(PACKAGE_DATA / "alembic.ini"))
SOURCE_SPECS_DIR = Path(str(PACKAGE_DATA / "sources"))


@dataclass(frozen=True)
class Settings:
    """What one catalogdb command runs against."""

    url: str | None
    home: Path

    @property
    def pgdata(self) -> Path:
        """The embedded server's data folder."""
        return self.home / "pgdata"

    @property
    def models_dir(self) -> Path:
        """Where trained CNN models are saved."""
        return self.home / "models"


def settings() -> Settings:
    """Read CATALOGDB_URL and CATALOGDB_HOME (default ./.catalogdb)."""
    url = os.environ.get("CATALOGDB_URL") or None
    home = Path(os.environ.get("CATALOGDB_HOME", ".catalogdb")).expanduser().resolve()
    return Settings(url=url, home=home)
