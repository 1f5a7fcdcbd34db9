"""The advisory listener as production runs it: `./dev watch` (which docker-compose runs too)
on the test database and the test Redis (it submits jobs), re-reading the profiles five times
a second unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from memphisadmin.celery import app as celery_app
from tests.support.process import ServerProcess
from tests.support.project import ROOT, dev_environment
from tests.support.waiting import wait_until


class Listener(ServerProcess):
    process_group = True

    def __init__(self, workdir: Path, name: str = "listener", **env: str) -> None:
        self.command = [str(ROOT / "dev"), "watch"]
        self.log_path = workdir / f"{name}.log"
        self.log_path.write_bytes(b"")  # what the waits below read must be this process's
        # On the test Redis (it submits jobs), once it runs.
        self._launch(30, cwd=ROOT, env=dev_environment(celery_app.conf.broker_url, **{
            "ADVISORY_REREAD_INTERVAL": "0.2",
            "SINGLETON_TTL": "3",  # a listener killed is replaced in seconds
            **env}))

    @property
    def label(self) -> str:
        return "advisory listener"

    def ready(self) -> bool:
        """Listening, or waiting for another listener's lock (streams.singleton)."""
        text = self.log_text()
        return "advisory listener started" in text or self.waiting_text in text

    waiting_text = "another advisory listener holds the lock"

    def wait_following(self, profile: str, what: str = "live advisories", times: int = 1) -> None:
        """Until the listener has said `times` times that it follows the profile's `what`
        ("live advisories" or "capture stream"): from then on nothing published is missed."""
        def following() -> bool:
            self.check_alive()
            return sum(f"profile {profile!r} (" in line and f"following the {what}" in line
                       for line in self.log_text().splitlines()) >= times

        wait_until(following, 20, lambda: f"{profile} not followed:\n{self.log_tail()}")
