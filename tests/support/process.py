"""`ServerProcess`: what every process the tests start shares. A subclass sets `command` and
`log_path`, says when the process is ready, and calls `_launch`; starting, waiting, stopping,
killing and reading the log work the same for all of them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from tests.support.waiting import wait_until


class ServerProcess:
    # How to ask the process to stop, and how long it gets before SIGKILL.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_grace: ClassVar[float] = 5.0
    # Signal the whole process group: for commands that fork workers or run through runuser.
    process_group: ClassVar[bool] = False
    ready_interval: ClassVar[float] = 0.05

    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def label(self) -> str:
        """What error messages call it."""
        return Path(self.command[0]).name

    def ready(self) -> bool:
        """True once the process serves what the tests need (an open port is often not it)."""
        raise NotImplementedError

    def _launch(
        self, timeout: float, *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        """Start `command` with its output appended to `log_path`; return once ready. A process
        that does not get ready is killed, so a failed start leaves nothing running."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=cwd or self.log_path.parent, env=env, start_new_session=self.process_group,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout: float) -> None:
        def up() -> bool:
            self.check_alive()
            return self.ready()

        wait_until(up, timeout, lambda: f"{self.label} is not ready\n{self.log_tail()}",
                   interval=self.ready_interval)

    def check_alive(self) -> None:
        """Fail at once, with its last words, when the process has exited."""
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.label} exited with code {code}\n{self.log_tail()}")

    def stop(self) -> None:
        """`stop_signal`, then SIGKILL if the process ignores it for `stop_grace` seconds."""
        if self.process.poll() is not None:
            return
        self._signal(self.stop_signal)
        try:
            self.process.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no chance to clean up."""
        self._signal(signal.SIGKILL)
        self.process.wait(5)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process_group:
            # Its children may outlive the leader: signal the group even when the leader is gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        elif self.process.poll() is None:
            self.process.send_signal(sig)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"

    def log_tail(self, n: int = 50) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


def stop_all(servers: Iterable[ServerProcess]) -> None:
    """Stop every server even if one of them misbehaves; re-raise the first error."""
    errors: list[BaseException] = []
    for server in servers:
        try:
            server.stop()
        except BaseException as exc:  # keep going so nothing is left running
            errors.append(exc)
    if errors:
        raise errors[0]
