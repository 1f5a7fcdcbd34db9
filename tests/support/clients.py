"""The official NATS clients of other languages, as applications use them: nats.js on Node.js
(the npm package pinned in tests/clients/js) and nats.go (Debian's package, built offline).
Each program makes one change on a server and exits; the tests read what the server said of
it. `./dev test` installs node, npm, Go and nats.go from Debian; npm ci runs here."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.project import ROOT

CLIENTS = ROOT / "tests" / "clients"
JS = CLIENTS / "js"
GOPATH = "/usr/share/gocode"  # where Debian's golang-*-dev packages put their sources
GO_NATS = Path(GOPATH, "src/github.com/nats-io/nats.go")


@dataclass(frozen=True)
class OtherClient:
    lang: str  # the language the client tells the server, as advisories repeat it
    command: list[str]  # the program; its arguments follow

    def create_stream(self, url: str, user: str, password: str, stream: str,
                      client_name: str) -> None:
        run = subprocess.run([*self.command, url, user, password, stream, client_name],
                             capture_output=True, text=True, timeout=30, check=False)
        assert run.returncode == 0, f"{self.lang}: {run.stdout}{run.stderr}"


def nats_js() -> OtherClient:
    """tests/clients/js/create_stream.js, its packages installed first when missing or older
    than the lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("needs node and npm: install the Debian packages nodejs and npm "
                          "(./dev test does)")
    lock = JS / "package-lock.json"
    installed = JS / "node_modules" / ".installed"  # written after npm ci succeeded
    # Runs in one checkout share node_modules (npm ci empties it first): one installs at once.
    with lock.open() as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < max(
                lock.stat().st_mtime, (JS / "package.json").stat().st_mtime):
            run = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--no-update-notifier"], cwd=JS,
                capture_output=True, text=True, timeout=300, check=False)
            if run.returncode != 0:
                raise RuntimeError(f"npm ci in {JS} failed:\n{run.stdout}{run.stderr}")
            installed.touch()
    return OtherClient("nats.js", [node, str(JS / "create_stream.js")])


def nats_go(workdir: Path) -> OtherClient:
    """tests/clients/go/create_stream.go built into `workdir`, offline, in GOPATH mode against
    Debian's nats.go (the Go module proxy may be out of reach)."""
    go = shutil.which("go")
    if go is None or not GO_NATS.is_dir():
        raise RuntimeError("needs Go and nats.go: install the Debian packages golang-go and "
                          "golang-github-nats-io-go-nats-dev (./dev test does)")
    binary = workdir / "create_stream"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOPROXY": "off",
           "GOFLAGS": ""}
    run = subprocess.run([go, "build", "-o", str(binary), str(CLIENTS / "go/create_stream.go")],
                         cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    if run.returncode != 0:
        raise RuntimeError(f"go build failed:\n{run.stdout}{run.stderr}")
    return OtherClient("go", [str(binary)])
