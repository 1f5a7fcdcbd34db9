"""What the benchmarks share: their own nats-servers, redis-server, SQLite database and Celery
worker (`./dev worker`) in a temporary directory, with production settings (DEBUG off, throwaway
keys), a logged-in client, and waiting for a job the way a page would see it end."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from tests.support.nats_server import NatsServer
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


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
        deadline = time.monotonic() + 30
        while b"ready." not in log_path.read_bytes():
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)


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
    """When the job's outcome was committed, as a time.time() value. The worker's last write
    before its commit is the job.finished audit entry, so its timestamp is that moment; polling
    for it slowly keeps the poller from taking CPU from the worker being measured."""
    from streams.models import AuditEvent, Job, JobStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, error = Job.objects.values_list("status", "error").get(pk=job_id)
        if status == JobStatus.SUCCEEDED:
            finished = AuditEvent.objects.filter(job_id=job_id, action="job.finished")
            return finished.values_list("at", flat=True).get().timestamp()
        if status == JobStatus.FAILED:
            raise RuntimeError(f"job {job_id} failed: {error}")
        time.sleep(0.02)
    raise RuntimeError(f"job {job_id} did not finish in {timeout} s")


def job_id_of(response: Any) -> int:
    text = response.content.decode()
    marker = 'id="job-'
    if response.status_code != 200 or marker not in text:
        raise RuntimeError(f"no job in the response ({response.status_code}): {text[:500]}")
    return int(text.split(marker, 1)[1].split('"', 1)[0])
