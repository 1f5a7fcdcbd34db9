"""The job pipeline under faults: duplicate delivery, a worker killed mid-job, no worker at
all, and Redis down when a job is submitted."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from streams.audit import Context
from streams.broker.connection import Connection
from streams.jobs import tasks
from streams.jobs.kinds import KINDS
from streams.models import (
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Profile,
    Stream,
    WorkerHeartbeat,
)
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.network import free_port
from tests.support.project import ROOT
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from tests.support.web import Web, WebClient
from tests.support.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def finished_events(job: Job) -> list[str]:
    return list(AuditEvent.objects.filter(job=job, action="job.finished")
                .values_list("outcome", flat=True))


def test_every_operation_has_one_kind_that_runs_it() -> None:
    """JobKind names the operations; the registry holds one class for each, and no other."""
    assert set(KINDS) == set(JobKind.values)
    assert all(kind.kind == name for name, kind in KINDS.items())


def test_duplicate_delivery_runs_the_job_once(
    celery_worker: Worker, nats_server: NatsServer, make_profile: Callable[..., Profile]
) -> None:
    profile = make_profile(nats_server)
    job = Job.objects.submit(JobKind.TEST_CONNECTION, profile, Context())
    duplicate = tasks.run_job.apply_async(args=[job.pk])  # a redelivery of the same job
    job = wait_for_job(job.pk)
    wait_until(lambda: f"run_job[{duplicate.id}] succeeded" in celery_worker.log_text(), 10,
               "the worker never ran the duplicate")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 1
    assert finished_events(job) == ["succeeded"]
    # And once more, long after the end: still a no-op.
    tasks.run_job(job.pk)
    job.refresh_from_db()
    assert job.attempts == 1 and finished_events(job) == ["succeeded"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP listener that never speaks NATS: a connect to it hangs for the connect timeout."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def test_reaper_fails_a_job_whose_worker_died(
    redis_server: RedisServer, tmp_path: Path, silent_port: int, client_alice: Client,
    make_profile: Callable[..., Profile], celery_worker: Worker,
) -> None:
    # A second worker, on its own queue, with a 1 s job deadline; killed while it works.
    doomed = Worker(redis_server.url, tmp_path, "-Q", "doomed", JOB_RUN_TIMEOUT="1")
    profile = make_profile(f"nats://127.0.0.1:{silent_port}", connect_timeout=30)
    job = Job.objects.create(kind=JobKind.TEST_CONNECTION, profile=profile,
                             profile_name=profile.name, target=profile.name)
    tasks.run_job.apply_async(args=[job.pk], queue="doomed")
    wait_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.RUNNING, 10,
               "the doomed worker never claimed the job")
    doomed.kill()
    deadline = Job.objects.get(pk=job.pk).deadline
    assert deadline is not None
    wait_until(lambda: timezone.now() > deadline, 5, f"the clock never passed {deadline}")

    # The polling card stops with the reason; the reaper, in the main process of the suite's
    # worker, fails the job on its schedule.
    card = client_alice.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert card.status_code == 286
    assert Job.WORKER_STOPPED in card.content.decode()
    job = wait_for_job(job.pk, timeout=10)
    assert job.status == JobStatus.FAILED
    assert job.error == Job.WORKER_STOPPED
    assert finished_events(job) == ["failed"]


def stale_job(profile: Profile, age: float) -> Job:
    """A job queued `age` seconds ago that no worker was ever handed."""
    job = Job.objects.create(kind=JobKind.TEST_CONNECTION, profile=profile,
                             profile_name=profile.name, target=profile.name)
    then = timezone.now() - timedelta(seconds=age)
    Job.objects.filter(pk=job.pk).update(created_at=then, queued_at=then)
    return job


def test_the_job_card_shows_an_overdue_job_without_writing(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    settings: Any,
) -> None:
    settings.JOB_QUEUE_TIMEOUT = 5  # here only: the suite's worker still waits 120 s
    job = stale_job(make_profile(nats_server), 10)
    entries = AuditEvent.objects.count()
    card = client_alice.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert card.status_code == 286  # polling ends: the card says why instead
    assert "no worker" in card.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and AuditEvent.objects.count() == entries


def test_no_wait_for_a_job_when_job_wait_is_zero(
    redis_server: RedisServer, db: Any, settings: Any,
) -> None:
    # Redis's BLPOP takes a timeout of 0 as "forever": JOB_WAIT=0 must answer at once.
    settings.JOB_WAIT = 0
    job = Job.objects.create(kind=JobKind.STREAM_LIST, profile_name="p", target="p")
    started = time.monotonic()
    assert job.wait().status == JobStatus.QUEUED
    assert time.monotonic() - started < 1  # the client's socket timeout would end it at 2 s


def test_a_job_nobody_picked_up_is_failed_saying_why(
    make_profile: Callable[..., Profile], nats_server: NatsServer
) -> None:
    profile, other = make_profile(nats_server), make_profile(nats_server)
    overdue = settings.JOB_QUEUE_TIMEOUT + 1
    # In one transaction, so a worker's heartbeat cannot land in between (its write waits).
    with transaction.atomic():
        WorkerHeartbeat.objects.all().delete()
        stale, fresh = stale_job(profile, overdue), stale_job(profile, 1)
        assert Job.objects.reap_overdue() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, fresh.status) == (JobStatus.FAILED, JobStatus.QUEUED)
    assert stale.error == (f"no worker picked the job up within {settings.JOB_QUEUE_TIMEOUT:g} "
                           "s: no worker is running")
    with transaction.atomic():
        WorkerHeartbeat.objects.update_or_create(name="w1", defaults={"seen_at": timezone.now()})
        busy = stale_job(other, overdue)
        Job.objects.reap_overdue()
    busy.refresh_from_db()
    assert busy.error.endswith("s: the workers were busy with other jobs")
    Job.objects.filter(pk=fresh.pk).update(status=JobStatus.RUNNING,
                                           deadline=timezone.now() + timedelta(minutes=1))
    behind = stale_job(profile, overdue)
    Job.objects.reap_overdue()
    behind.refresh_from_db()
    assert "behind another job on this connection, which is still running" in behind.error


def test_one_unreachable_connection_holds_up_no_other_jobs(
    celery_worker: Worker, nats_server: NatsServer, make_profile: Callable[..., Profile],
) -> None:
    """Three servers that accept and never answer, tested twice, with the longest connect
    timeout: the connection's jobs run one at a time, so a create elsewhere goes through."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        hanging = make_profile("\n".join([f"nats://127.0.0.1:{port}"] * 3), connect_timeout=30)
        tests = [Job.objects.submit(JobKind.TEST_CONNECTION, hanging, Context())
                 for _ in range(2)]
        healthy = make_profile(nats_server, last_server_version=nats_server.version)
        create = Job.objects.submit(JobKind.STREAM_CREATE, healthy, Context(), target="quick",
                                    params={"config": {"name": "quick", "subjects": ["quick"]}})
        assert wait_for_job(create.pk, timeout=10).status == JobStatus.SUCCEEDED
        statuses = sorted(Job.objects.get(pk=job.pk).status for job in tests)
        assert statuses == [JobStatus.QUEUED, JobStatus.RUNNING]
    # The listener is gone: both tests now fail at once, and free the slot.
    for job in tests:
        assert wait_for_job(job.pk, timeout=20).status == JobStatus.FAILED


def test_the_reaper_runs_while_every_slot_is_busy_and_broker_time_is_capped(
    celery_worker: Worker, redis_server: RedisServer, tmp_path: Path, silent_port: int,
    nats_server: NatsServer, make_profile: Callable[..., Profile],
) -> None:
    busy = Worker(redis_server.url, tmp_path, "-Q", "one-slot", WORKER_CONCURRENCY="1",
                  JOB_BROKER_TIMEOUT="3", JOB_REAP_INTERVAL="0.5", JOB_QUEUE_TIMEOUT="60")
    try:
        slow = stale_job(make_profile(f"nats://127.0.0.1:{silent_port}", connect_timeout=30), 0)
        tasks.run_job.apply_async(args=[slow.pk], queue="one-slot")
        wait_until(lambda: Job.objects.get(pk=slow.pk).status == JobStatus.RUNNING, 10,
                   "the one-slot worker never took the job")
        # Overdue for the one-slot worker (60 s), not yet for the suite's worker (120 s).
        stale = stale_job(make_profile(nats_server), 90)
        stale = wait_for_job(stale.pk, timeout=5)
        assert Job.objects.get(pk=slow.pk).status == JobStatus.RUNNING  # its only slot is busy
        assert stale.error == ("no worker slot came free within 60 s: the workers were busy "
                               "with other jobs")
        # A connect timeout of 30 s twice over, capped at 3 s for the whole job.
        slow = wait_for_job(slow.pk, timeout=10)
        assert slow.error.startswith("timed out after 3 s")
        assert slow.duration is not None and slow.duration.total_seconds() < 5
    finally:
        busy.stop()


def test_a_profile_deleted_while_its_job_runs(
    make_profile: Callable[..., Profile], nats_server: NatsServer
) -> None:
    """The job still ends as it ended on the broker, and the end writes nothing for the gone
    profile (its stream rows went with it)."""
    profile = make_profile(nats_server)
    job = Job.objects.create(kind=JobKind.STREAM_CREATE, profile=profile,
                             profile_name=profile.name, target="orphaned",
                             params={"config": {"name": "orphaned", "subjects": ["orphaned"]}})
    claimed = Job.objects.claim(job.pk)
    assert claimed is not None
    kind = KINDS[JobKind.STREAM_CREATE]
    result = kind.call(claimed, Connection.from_profile(profile))  # the real create
    profile.delete()
    claimed.finish(result, kind)
    job.refresh_from_db()
    assert (job.status, job.profile_id, claimed.profile) == (JobStatus.SUCCEEDED, None, None)
    finished = AuditEvent.objects.get(job=job, action="job.finished")
    assert (finished.outcome, finished.profile_name) == ("succeeded", profile.name)
    assert not AuditEvent.objects.filter(job=job, action="stream.created").exists()
    assert not Stream.objects.filter(name="orphaned").exists()


@pytest.fixture
def web_without_redis(django_db_setup: Any, tmp_path: Path) -> Iterator[str]:
    """`./dev web` (the command docker-compose runs) with REDIS_URL pointing at a dead port."""
    web = Web(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    try:
        yield web.url
    finally:
        web.stop()


def test_redis_down_at_submit_fails_the_job_at_once(
    web_without_redis: str, nats_server: NatsServer, make_profile: Callable[..., Profile]
) -> None:
    get_user_model().objects.create_superuser("carol", "", "carol-pass-77")
    profile = make_profile(nats_server)
    web = WebClient(web_without_redis)
    web.log_in("carol", "carol-pass-77")
    assert web.get("/static/css/app.css")[0] == 200  # static files come from gunicorn itself

    started = time.monotonic()
    status, card = web.post(f"/profiles/{profile.pk}/test/", {}, {"HX-Request": "true"})
    elapsed = time.monotonic() - started
    job = Job.objects.get(profile=profile)
    assert status == 200
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("task queue unreachable")
    assert re.search(r'data-status="failed"', card) and "task queue unreachable" in card
    assert "hx-trigger" not in card  # no spinner left polling
    assert elapsed < 5
    assert finished_events(job) == ["failed"]


def test_the_web_process_never_imports_the_broker_client() -> None:
    """Every screen and the job submission load without nats-py: only the worker talks to
    brokers."""
    code = ("import sys, django; django.setup(); from django.urls import get_resolver; "
            "[p for p in get_resolver().url_patterns]; import streams.models, "
            "streams.jobs.wakeup, streams.views.streams, streams.views.profiles; "
            "print(sorted(m for m in sys.modules if m == 'nats' or m.startswith('nats.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "memphisadmin.settings"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def running_apply(profile: Profile, **fields: Any) -> Job:
    """An apply someone asked for, as far as its row says: no worker takes it here."""
    return Job.objects.create(kind=JobKind.STREAM_APPLY, profile=profile,
                              profile_name=profile.name, target=profile.name,
                              params={"plan": 1}, **fields)


def test_a_running_jobs_card_counts_and_estimates_what_is_left(
    client_alice: Client, make_profile: Callable[..., Profile],
) -> None:
    profile = make_profile("nats://127.0.0.1:1")
    started = timezone.now() - timedelta(seconds=10)
    job = running_apply(profile, status=JobStatus.RUNNING, started_at=started,
                        progress={"done": 0, "total": 1000})
    url = reverse("job_detail", args=[job.pk])
    card = client_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert '<progress max="1000" value="0"' in card
    assert "0 of 1,000 · <span class=\"estimate\">estimating…</span>" in card
    # A quarter in 10 s (and the moments since): three more quarters take 30.
    Job.objects.filter(pk=job.pk).update(progress={"done": 250, "total": 1000})
    card = client_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r"250 of 1,000 · <span class=\"estimate\">about 3\d s left", card), card


def test_a_queued_apply_stopped_never_runs_and_the_stop_is_audited(
    client_alice: Client, make_profile: Callable[..., Profile], redis_server: RedisServer,
) -> None:
    profile = make_profile("nats://127.0.0.1:1")
    job = running_apply(profile)  # queued: no worker here
    card = client_alice.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "Stop before it starts" in card
    response = client_alice.post(reverse("job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Trigger"] == "job-finished"
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED,
                                       "stopped before it started: nothing was changed")
    assert "Stop before" not in response.content.decode()
    entries = AuditEvent.objects.filter(job=job).order_by("seq")
    assert [(e.action, e.outcome, e.actor_name) for e in entries] == [
        ("job.cancel_requested", "requested", "alice"), ("job.finished", "failed", "")]
    # Asked again, or once it ended: nothing more happens.
    client_alice.post(reverse("job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert AuditEvent.objects.filter(job=job).count() == 2


def test_only_jobs_that_stop_safely_offer_stop(
    client_alice: Client, make_profile: Callable[..., Profile], redis_server: RedisServer,
) -> None:
    profile = make_profile("nats://127.0.0.1:1")
    job = Job.objects.create(kind=JobKind.STREAM_LIST, profile=profile,
                             profile_name=profile.name, target=profile.name,
                             status=JobStatus.RUNNING, started_at=timezone.now())
    card = client_alice.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert reverse("job_cancel", args=[job.pk]) not in card
    client_alice.post(reverse("job_cancel", args=[job.pk]))
    job.refresh_from_db()
    assert not job.cancel_requested and job.status == JobStatus.RUNNING
    assert not AuditEvent.objects.filter(action="job.cancel_requested").exists()
