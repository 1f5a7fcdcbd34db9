"""A real redis-server on loopback, without persistence: the Celery broker of the tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from tests.support.network import LOOPBACK, free_port
from tests.support.process import ServerProcess


@dataclass(eq=False, kw_only=True)
class RedisServer(ServerProcess):
    port: int
    workdir: Path
    log_path: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @classmethod
    def start(
        cls, workdir: Path, *, binary: str = "redis-server", timeout: float = 10.0,
        port: int | None = None,
    ) -> RedisServer:
        """On a free port, or on `port` (a server stopped earlier, started again)."""
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        server = cls(
            port=port,
            workdir=workdir,
            log_path=workdir / "redis.log",
            # No persistence: tests must never leave dump.rdb/AOF files behind.
            command=[binary, "--port", str(port), "--bind", LOOPBACK, "--save", "",
                     "--appendonly", "no", "--dir", str(workdir)],
        )
        server._launch(timeout)
        return server

    def ready(self) -> bool:
        # The port opens before the dataset is loaded; PONG means it serves commands.
        return self.ping()

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
