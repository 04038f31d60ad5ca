"""Settings from the environment: where the database and catalogdb's files live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
INGEST_SPECS_DIR = PROJECT_ROOT / "ingest"


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
