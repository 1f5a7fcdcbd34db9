"""A throwaway PostgreSQL cluster (Debian's binaries) on a loopback port, trust auth, and a
pytest session of its own run on one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.network import LOOPBACK, free_port
from tests.support.process import ServerProcess
from tests.support.project import ROOT


def _postgres_bin(tool: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))
    if not found:
        raise RuntimeError("no PostgreSQL server: install the Debian package postgresql")
    return str(found[-1])


def _as_postgres(argv: list[str]) -> list[str]:
    # The server refuses to run as root; tests here often do.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass(eq=False, kw_only=True)
class PostgresServer(ServerProcess):
    stop_signal = signal.SIGINT  # "fast" shutdown
    stop_grace = 15.0
    process_group = True  # runuser's child is the server
    ready_interval = 0.1

    port: int
    datadir: Path
    log_path: Path
    command: list[str]
    user: str = "memphisadmin"

    @property
    def label(self) -> str:
        return "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@{LOOPBACK}:{self.port}/{database}"

    @classmethod
    def start(cls, timeout: float = 30.0) -> PostgresServer:
        # Its own folder under /tmp: pytest's tmp dirs are private to root, and postgres must
        # own its data directory.
        datadir = Path(tempfile.mkdtemp(prefix="memphisadmin-pg-"))
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres", "postgres")
        subprocess.run(
            _as_postgres([_postgres_bin("initdb"), "-D", str(datadir / "data"), "-A", "trust",
                          "-U", "memphisadmin", "--no-sync"]),
            check=True, capture_output=True,
        )
        port = free_port()
        server = cls(
            port=port,
            datadir=datadir,
            log_path=datadir / "postgres.log",
            command=_as_postgres([_postgres_bin("postgres"), "-D", str(datadir / "data"),
                                  "-h", LOOPBACK, "-p", str(port), "-k", str(datadir),
                                  "-c", "fsync=off"]),
        )
        server._launch(timeout)
        return server

    def ready(self) -> bool:
        return "ready to accept connections" in self.log_text()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            shutil.rmtree(self.datadir, ignore_errors=True)

    def kill(self) -> None:
        try:
            super().kill()
        finally:
            shutil.rmtree(self.datadir, ignore_errors=True)


def pytest_on_postgresql(args: list[str], basetemp: Path, timeout: float) -> None:
    """Run pytest with `args` in a session of its own whose database is a throwaway PostgreSQL
    server's (DATABASE_URL), as is that of every process its tests start; fail unless every
    test it collects passes (none skipped)."""
    server = PostgresServer.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--basetemp={basetemp}", *args],
            cwd=ROOT, env={**os.environ, "DATABASE_URL": server.url("memphisadmin")},
            capture_output=True, text=True, timeout=timeout,
        )
    finally:
        server.stop()
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in summary and "skipped" not in summary, summary
