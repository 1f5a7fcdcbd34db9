"""A real Celery worker process, started with the production command."""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from streams.models import Job
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


def running_jobs(redis_url: str) -> dict[str, list[int]]:
    """The jobs each worker on `redis_url` is running now, by its node name, as `celery inspect
    active` tells: each worker's main process answers, however busy its pool is."""
    # An app of its own: the project's would publish the request on its own Redis.
    control = Celery(broker=redis_url, set_as_current=False).control
    replies = control.inspect(timeout=1).active() or {}
    return {node: [task["args"][0] for task in tasks if task["name"] == Job.TASK]
            for node, tasks in replies.items()}
