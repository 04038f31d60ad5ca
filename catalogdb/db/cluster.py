"""A throwaway PostgreSQL cluster from the system binaries (tests and benchmarks against real q3c)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SYSTEM_BINDIR = Path(os.environ.get("CATALOGDB_PG_BINDIR", "/usr/lib/postgresql/15/bin"))


@dataclass
class Cluster:
    """A running temporary cluster; `url(db)` gives a SQLAlchemy URL."""

    root: Path
    port: int
    bindir: Path
    user: str | None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of one database on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        _run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"], self.user)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], user: str | None) -> None:
    # PostgreSQL refuses to run as root: run its programs as the `postgres` system user instead.
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(bindir: Path = SYSTEM_BINDIR) -> Cluster:
    """initdb and start a cluster in a new temporary folder on a free loopback port."""
    if not (bindir / "initdb").exists():
        raise FileNotFoundError(f"no PostgreSQL server binaries in {bindir}")
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        pwd.getpwnam(user)  # KeyError when the system has no postgres user
    root = Path(tempfile.mkdtemp(prefix="catalogdb-pg-"))
    os.chmod(root, 0o777)
    data = root / "data"
    port = _free_port()
    _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], user)
    opts = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c max_parallel_workers_per_gather=2"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"], user)
    return Cluster(root=root, port=port, bindir=bindir, user=user)
