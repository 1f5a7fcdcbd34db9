"""A real Celery worker process, started with the production command."""

from __future__ import annotations

from pathlib import Path

from tests.support.process import ServerProcess
from tests.support.project import ROOT, dev_environment


class Worker(ServerProcess):
    """`./dev worker` (which docker-compose runs too) on the test database and the test Redis;
    ready once Celery says so. Extra arguments go to celery, keyword arguments to its
    environment."""

    stop_grace = 15.0
    process_group = True  # SIGKILL must reach the pool processes too
    ready_interval = 0.1

    def __init__(self, redis_url: str, workdir: Path, *args: str, **env: str) -> None:
        self.command = [str(ROOT / "dev"), "worker", *args]
        self.log_path = workdir / "worker.log"
        self.log_path.write_bytes(b"")  # "ready." must be this worker's
        # Overdue jobs are failed within a second, not 15, unless the test says otherwise.
        self._launch(30, cwd=ROOT, env=dev_environment(redis_url, **{
            "JOB_REAP_INTERVAL": "1", **env}))

    @property
    def label(self) -> str:
        return "celery worker"

    def ready(self) -> bool:
        return "ready." in self.log_text()
