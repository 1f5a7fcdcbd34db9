"""Session-wide real servers: nats-server, redis-server and a Celery worker process, all on
loopback ports chosen here, with temporary data dirs, stopped at the end."""

from __future__ import annotations

import os
import signal
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


def subprocess_database_url() -> str:
    """The test database as a URL, for the processes the tests start (worker, web)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Worker:
    """A real worker process started with the production command (`./dev worker`, which
    docker-compose runs too), on the test database and the test Redis."""

    def __init__(self, redis_url: str, workdir: Path, *args: str, **env: str) -> None:
        self.log_path = workdir / "worker.log"
        environment = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "REDIS_URL": redis_url,
            "DATABASE_URL": subprocess_database_url(),
            "PYTHONUNBUFFERED": "1",
            "JOB_REAP_INTERVAL": "1",  # overdue jobs are failed within a second, not 15
            **env,
        }
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [str(ROOT / "dev"), "worker", *args], cwd=ROOT, env=environment,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while b"ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a crash or an OOM kill would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: Any, redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    worker = Worker(redis_server.url, tmp_path_factory.mktemp("worker"))
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failed one: every test here needs only what CI installs."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def wait_for_job(job_id: int, timeout: float = 20.0) -> Job:
    """Poll the database until the worker has finished the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")
