"""What the benchmarks share: their own nats-servers, redis-server, SQLite database and Celery
worker (`./dev worker`) in a temporary directory, with production settings (DEBUG off, throwaway
keys), a logged-in client, and waiting for a job the way a page would see it end. Every wait has
a deadline: past it the run ends with why (`give_up`), never hangs."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from cryptography.fernet import Fernet

from tests.support.nats_server import NatsServer
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def give_up(reason: str) -> NoReturn:
    """End the run with its reason (the servers are stopped on the way out), no traceback."""
    raise SystemExit(f"{Path(sys.argv[0]).name}: gave up: {reason}")


async def within(seconds: float, what: str, awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result, or the end of the run if it takes more than `seconds`."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        give_up(f"{what}: no answer within {seconds:g} s")


def wait_for(predicate: Callable[[], T], seconds: float, what: str | Callable[[], str],
             interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; past `seconds`, end the run with
    `what` (a callable is asked only then, e.g. for a log's tail)."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() > deadline:
            give_up(f"{what() if callable(what) else what} (waited {seconds:g} s)")
        time.sleep(interval)
    return value


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Stack:
    workdir: Path
    env: dict[str, str]
    nats: dict[str, NatsServer]
    worker: subprocess.Popen[bytes] | None = field(default=None)

    def start_worker(self) -> None:
        """The production worker command, `./dev worker`."""
        log_path = self.workdir / "worker.log"
        self.worker = subprocess.Popen(
            [str(ROOT / "dev"), "worker"], cwd=ROOT, stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
            env={**self.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        )
        worker = self.worker

        def ready() -> bool:
            if worker.poll() is not None:
                give_up(f"the worker exited:\n{log_path.read_text()[-3000:]}")
            return b"ready." in log_path.read_bytes()

        wait_for(ready, 30, lambda: f"the worker did not start:\n{log_path.read_text()[-3000:]}")


@contextmanager
def stack(*nats_names: str) -> Iterator[Stack]:
    """Servers named `nats_names`, Redis and a migrated database, Django set up on them; the
    worker once asked for (start_worker). Everything is stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="memphisadmin-bench-"))
    started: list[Any] = []
    running = Stack(workdir, {}, {})
    try:
        for name in nats_names:
            running.nats[name] = NatsServer.start(workdir / name,
                                                  name=f"memphisadmin-bench-{name}")
            started.append(running.nats[name])
        redis = RedisServer.start(workdir / "redis")
        started.append(redis)
        running.env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "memphisadmin.settings", "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50), "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}", "REDIS_URL": redis.url,
            "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "testserver", "STATIC_ROOT": str(workdir),
        }
        os.environ.update(running.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield running
    finally:
        if running.worker is not None:
            os.killpg(running.worker.pid, signal.SIGTERM)
            running.worker.wait(15)
        for server in started:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def logged_in_client() -> Any:
    """A Django test client with a superuser's session (requests go as HTTPS, as in
    production)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bench", "", "bench-pass-1234"))
    return client


def wait_succeeded(job_id: int, timeout: float = 120) -> float:
    """When the job's outcome was committed, as a time.time() value. A change's last write
    before its commit is the job.finished audit entry, so its timestamp is that moment; a read
    writes no entry, so it is when the poll saw the outcome (within its 20 ms). Polling slowly
    keeps the poller from taking CPU from the worker being measured."""
    from streams.models import AuditEvent, Job, JobStatus

    def succeeded() -> float:
        status, error = Job.objects.values_list("status", "error").get(pk=job_id)
        if status == JobStatus.FAILED:
            give_up(f"job {job_id} failed: {error}")
        return time.time() if status == JobStatus.SUCCEEDED else 0.0

    seen = wait_for(succeeded, timeout, f"job {job_id} did not finish", interval=0.02)
    finished = AuditEvent.objects.filter(job_id=job_id, action="job.finished")
    entry = finished.values_list("at", flat=True).first()
    return entry.timestamp() if entry is not None else seen


def job_id_of(response: Any) -> int:
    text = response.content.decode()
    marker = 'id="job-'
    if response.status_code != 200 or marker not in text:
        raise RuntimeError(f"no job in the response ({response.status_code}): {text[:500]}")
    return int(text.split(marker, 1)[1].split('"', 1)[0])
