"""The scheduler as production runs it: `./dev schedule` (which docker-compose runs too) on the
test database and the test Redis (it submits the checks), checking every connection each
second unless told otherwise."""

from __future__ import annotations

from pathlib import Path

from memphisadmin.celery import app as celery_app
from tests.support.process import ServerProcess
from tests.support.project import ROOT, dev_environment


class Scheduler(ServerProcess):
    process_group = True
    waiting_text = "another scheduler holds the lock"

    def __init__(self, workdir: Path, name: str = "scheduler", **env: str) -> None:
        self.command = [str(ROOT / "dev"), "schedule"]
        self.log_path = workdir / f"{name}.log"
        self.log_path.write_bytes(b"")
        # On the test Redis, once it runs.
        self._launch(30, cwd=ROOT, env=dev_environment(celery_app.conf.broker_url, **{
            "CHECK_INTERVAL": "1",
            "SINGLETON_TTL": "3",  # a scheduler killed is replaced in seconds
            **env}))

    @property
    def label(self) -> str:
        return "scheduler"

    @property
    def holding(self) -> bool:
        return "scheduler: holding the lock" in self.log_text()

    def ready(self) -> bool:
        """Scheduling, or waiting for another scheduler's lock (streams.singleton)."""
        return self.holding or self.waiting_text in self.log_text()
