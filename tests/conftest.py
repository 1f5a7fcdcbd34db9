"""Session-wide real servers: nats-server, redis-server and a Celery worker process, all on
loopback ports chosen here, with temporary data dirs, stopped at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from memphisadmin.celery import app as celery_app
from streams.models import Job, Profile
from tests.servers import NatsServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer.start(tmp_path_factory.mktemp("nats"), name="memphisadmin-test")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    # The web side of the tests publishes to this Redis.
    celery_app.conf.broker_url = server.url
    yield server
    server.stop()


class Worker:
    """A real `celery worker` process using the test database and the test Redis."""

    def __init__(self, redis_url: str, log_path: Path, extra_env: dict[str, str] | None = None):
        self.log_path = log_path
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"sqlite:///{settings.DATABASES['default']['NAME']}",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.log = open(log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "memphisadmin", "worker", "--pool=prefork",
             "--concurrency=2", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while b"ready." not in log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: Any, django_db_blocker: Any, redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    worker = Worker(redis_server.url, tmp_path_factory.mktemp("worker") / "worker.log")
    yield worker
    worker.stop()


@pytest.fixture
def user(db: Any) -> Any:
    return get_user_model().objects.create_superuser("alice", "alice@example.com", "s3cret-pass")


@pytest.fixture
def client_alice(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def make_profile() -> Callable[..., Profile]:
    def make(server: NatsServer | str, **fields: Any) -> Profile:
        url = server if isinstance(server, str) else server.url
        fields.setdefault("name", f"profile-{Profile.objects.count() + 1}")
        return Profile.objects.create(servers=url, **fields)

    return make


def wait_for_job(job_id: int, timeout: float = 20.0) -> Job:
    """Poll the database until the worker has finished the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")
