"""/healthz, without a login: 200 while the database, Redis, a worker, its reaper and (when a
profile records changes made outside) the listener are up; 503 naming what is not, and 200
again once it is back. Real Redis and a real worker, stopped and started again. And /metrics,
behind its token, counting what a real worker ran."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from memphisadmin.celery import app as celery_app
from streams import audit
from streams.models import (
    AuditChainHead,
    Job,
    JobKind,
    JobStatus,
    Profile,
    WorkerHeartbeat,
)
from tests.support.jobs import wait_for_job
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from tests.support.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

# A Celery node name of its own: the suite's worker on this host is celery@<host> too, and a
# heartbeat is a node's (as in production, where each worker needs its own name).
NODE = ("-n", "health@%h")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, as this deployment's queue: the health checks ask about it
    and the processes serving it, not the suite's worker on the suite's Redis."""
    server = RedisServer.start(tmp_path / "redis")
    suites = celery_app.conf.broker_url
    celery_app.conf.broker_url = server.url
    yield server
    celery_app.conf.broker_url = suites
    server.stop()


def health(client: Client) -> tuple[int, str]:
    """Asked from a thread of its own, as gunicorn's are: the view is async, and a browser
    test earlier in this process may have left an event loop running in this one."""
    with ThreadPoolExecutor(1) as thread:
        response = thread.submit(client.get, "/healthz", HTTP_ACCEPT="text/plain").result(30)
    return response.status_code, response.content.decode()


def test_healthz_follows_redis_and_the_workers(redis: RedisServer, tmp_path: Path) -> None:
    client = Client()  # nobody logged in
    worker = Worker(redis.url, tmp_path, *NODE)
    try:
        status, body = wait_until(lambda: (lambda answer: answer if answer[0] == 200 else None)(
            health(client)), 20, lambda: health(client)[1])
        assert "Celery worker: OK" in body and "Reaper: OK" in body and "Database" in body
        assert "redis://" not in body  # where, not how to get in

        redis.stop()
        status, body = health(client)
        assert status == 503 and "Redis" in body and "Celery worker: OK" in body
        redis = RedisServer.start(tmp_path / "redis", port=redis.port)
        assert health(client)[0] == 200

        worker.stop()  # every worker: their heartbeats then age past three rounds
        WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=5),
                                       reaped_at=timezone.now() - timedelta(minutes=5))
        status, body = health(client)
        assert status == 503
        assert "no worker is running (last seen 300 s ago)" in body
        assert "the reaper has not run" in body
        worker = Worker(redis.url, tmp_path, *NODE)
        wait_until(lambda: health(client)[0] == 200, 20, lambda: health(client)[1])
    finally:
        worker.stop()
        redis.stop()


def test_healthz_asks_for_the_listener_and_the_scheduler_only_when_they_have_work(
    redis: RedisServer,
) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="celery@test", seen_at=now, reaped_at=now,
                                   broker=WorkerHeartbeat.serving())
    client = Client()
    assert health(client)[0] == 200
    Profile.objects.create(name="recorded", servers="nats://127.0.0.1:4222",
                           record_outside=True)
    status, body = health(client)
    assert status == 503 and "the advisory listener is not running (last seen never)" in body
    WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.LISTENER)
    status, body = health(client)  # a connection to check asks for the scheduler too
    assert status == 503 and "the scheduler is not running (last seen never)" in body
    WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.SCHEDULER)
    assert health(client)[0] == 200


def compose_healthcheck(address: str) -> list[str]:
    """The web service's healthcheck command in docker-compose.yml, aimed at `address`."""
    compose = (Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text()
    line = next(line for line in compose.splitlines() if "8000/healthz" in line)
    command = json.loads(line.split("test:", 1)[1])
    assert command[0] == "CMD"
    return [part.replace("127.0.0.1:8000", address) for part in command[1:]]


def test_the_compose_healthcheck_passes_and_fails_with_healthz(
    redis: RedisServer, live_server: Any,
) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="celery@test", seen_at=now, reaped_at=now,
                                   broker=WorkerHeartbeat.serving())
    command = compose_healthcheck(live_server.url.removeprefix("http://"))
    command[0] = sys.executable  # the image's python, here the test's
    assert subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    redis.stop()
    failed = subprocess.run(command, capture_output=True, timeout=10)
    assert failed.returncode == 1 and b"503" in failed.stderr


def sample(text: str, name: str, **labels: str) -> float:
    """A sample's value in Prometheus's text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} " if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.usefixtures("celery_worker")
def test_metrics_count_what_a_real_worker_ran(
    settings: Any, make_profile: Any, nats_server: Any,
) -> None:
    client = Client()
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # off without a token
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-token-0123456789"}
    before = client.get("/metrics", **auth).content.decode()

    profile = make_profile(nats_server, name="counted")
    job = Job.objects.submit(JobKind.TEST_CONNECTION, profile, audit.Context())
    assert wait_for_job(job.pk).status == JobStatus.SUCCEEDED

    after = client.get("/metrics", **auth).content.decode()
    for name, labels in (("memphisadmin_jobs_total", {"kind": "test_connection",
                                                      "outcome": "succeeded"}),
                         ("memphisadmin_job_queue_wait_seconds_count",
                          {"kind": "test_connection"}),  # observed in the worker's process
                         ("memphisadmin_job_run_seconds_count", {"kind": "test_connection"}),
                         ("memphisadmin_audit_entries_total", {"action": "job.finished"})):
        assert sample(after, name, **labels) == sample(before, name, **labels) + 1, name
    head = AuditChainHead.objects.get().seq
    assert sample(after, "memphisadmin_audit_head_seq") == head
    assert "scrape-token" not in after and nats_server.url not in after
