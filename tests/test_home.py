"""The home page (is everything OK?), the scheduler that keeps it current by checking every
connection, the charts those checks sample for, and the lock that keeps one scheduler a
deployment. Real servers, a real Celery worker and a real `./dev schedule`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from memphisadmin.celery import app as celery_app
from streams import audit, checks
from streams.models import (
    AuditEvent,
    ConnectionHealth,
    Consumer,
    ConsumerSample,
    Job,
    JobKind,
    JobStatus,
    Profile,
    Role,
    Stream,
    StreamSample,
    StreamSync,
    Team,
    WorkerHeartbeat,
)
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.project import ROOT, dev_environment
from tests.support.raw_jetstream import api, in_thread
from tests.support.scheduler import Scheduler
from tests.support.stream_forms import refresh_list
from tests.support.teams import logged_in, member
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def card(client: Client, profile: Profile) -> str:
    """The profile's card on the home page, its tags stripped to words."""
    page = client.get("/").content.decode()
    found = re.search(rf'<section class="card health \w+" id="health-{profile.pk}">(.*?)</section>',
                      page, re.S)
    assert found, page
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split())


def state(client: Client, profile: Profile) -> str:
    page = client.get("/").content.decode()
    return re.search(rf'class="card health (\w+)" id="health-{profile.pk}"', page).group(1)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer.start(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler(tmp_path)
    yield scheduler
    scheduler.stop()


def test_a_stopped_broker_shows_down_within_a_minute_and_up_again(
    admin_client: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
    scheduler: Scheduler,
) -> None:
    profile = make_profile(own_server, name="watched")
    wait_until(lambda: state(admin_client, profile) == "ok", 30,
               lambda: card(admin_client, profile))
    words = card(admin_client, profile)
    assert f"nats-server {own_server.version}" in words and "up" in words
    assert "JetStream use:" in words and "the account has no limits" in words

    own_server.stop()
    stopped = time.monotonic()
    wait_until(lambda: state(admin_client, profile) == "down", 60,
               lambda: card(admin_client, profile))
    took = time.monotonic() - stopped
    words = card(admin_client, profile)
    assert took < 60 and "down" in words and "last answered" in words, words
    assert "connection refused" in words.lower() or "could not connect" in words.lower(), words

    own_server.restart()
    wait_until(lambda: state(admin_client, profile) == "ok", 30,
               lambda: card(admin_client, profile))
    # The scheduler's checks are nobody's jobs and none is audited.
    checked = Job.objects.filter(profile=profile, kind=JobKind.CONNECTION_CHECK)
    assert checked.count() >= 3 and not checked.exclude(actor=None).exists()
    assert not AuditEvent.objects.filter(job__in=checked).exists()


async def _fill(url: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="CHARTED", subjects=["charted.>"])
    await js.add_consumer("CHARTED", durable_name="billing")
    for _ in range(count):
        await js.publish("charted.one", b"x" * 100)
    await nc.close()


def check(profile: Profile, *, sample: bool = True) -> Job:
    job = Job.objects.submit(JobKind.CONNECTION_CHECK, profile, audit.Context(),
                             params={"sample": sample})
    job = wait_for_job(job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


def test_a_check_samples_streams_and_consumers_for_the_stream_page_charts(
    admin_client: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    profile = make_profile(own_server, name="charted")
    in_thread(_fill(own_server.url, 10))
    check(profile)
    page = admin_client.get(f"/profiles/{profile.pk}/stream/CHARTED/").content.decode()
    assert "Messages: one sample so far" in page

    in_thread(_publish(own_server.url, 15))
    check(profile, sample=False)  # a liveness check only: no sample
    assert StreamSample.objects.filter(stream="CHARTED").count() == 1
    check(profile)
    samples = list(StreamSample.objects.filter(stream="CHARTED").values_list("messages", flat=True))
    lags = list(ConsumerSample.objects.filter(consumer="billing").values_list("pending", flat=True))
    assert samples == [10, 25] and lags == [10, 25]

    page = admin_client.get(f"/profiles/{profile.pk}/stream/CHARTED/").content.decode()
    words = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "Messages 25 now · low 10 · high 25" in words
    assert "Lag of billing 25 now · low 10 · high 25" in words
    assert page.count("<polyline") == 3  # messages, bytes, the consumer's lag
    # The listing came along: the stream's row, and its consumer's, are as the check found them.
    assert Stream.objects.get(profile=profile, name="CHARTED").messages == 25
    assert profile.consumers.get(name="billing").pending == 25


async def _publish(url: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for _ in range(count):
        await js.publish("charted.one", b"x" * 100)
    await nc.close()


def test_the_home_page_counts_what_it_links_to_for_the_teams_of_its_user(
    make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    ours, theirs = Team.objects.create(name="payments"), Team.objects.create(name="search")
    profile = make_profile(nats_server, name="payments-prod", team=ours)
    make_profile(nats_server, name="search-prod", team=theirs)
    now = timezone.now()
    for index, sync in enumerate([StreamSync.IN_SYNC] * 3 + [StreamSync.DRIFTED] * 2
                                 + [StreamSync.MISSING] + [StreamSync.UNMANAGED] * 4):
        Stream.objects.create(profile=profile, name=f"s{index}", sync=sync, read_at=now)
    Stream.objects.create(profile=profile, name="KV_config", system_kind="kv", read_at=now)
    Job.objects.create(kind=JobKind.STREAM_CREATE, profile=profile, profile_name=profile.name,
                       status=JobStatus.FAILED, finished_at=now - timedelta(hours=1))
    Job.objects.create(kind=JobKind.STREAM_CREATE, profile=profile, profile_name=profile.name,
                       status=JobStatus.FAILED, finished_at=now - timedelta(hours=30))
    Job.objects.create(kind=JobKind.CONNECTION_CHECK, profile=profile, profile_name=profile.name,
                       status=JobStatus.FAILED, finished_at=now)  # the check's own: on the card
    ConnectionHealth.objects.create(profile=profile, checked_at=now, ok=True, report={
        "version": "2.15.1", "server_name": "n1", "cluster": "east", "cluster_size": 3,
        "leaders": {"n1": 4, "n2": 3}, "rtt_ms": 0.4,
        "account": {"storage": 512 * 1024 ** 2, "memory": 0, "streams": 10, "consumers": 4,
                    "limits": {"max_storage": 1024 ** 3, "max_memory": -1,
                               "max_streams": 100, "max_consumers": -1}}})

    viewer = logged_in(member(ours, "vera", Role.VIEWER))
    words = card(viewer, profile)
    assert "3 in sync · 2 drifted · 1 missing · 4 unmanaged" in words  # no system stream
    assert "1 failed in 24 h" in words and "0 running or queued" in words
    assert "east, 3 servers · stream leaders: n1 (4), n2 (3)" in words
    assert "512.0 MB of 1.0 GB (50%)" in words and "10 of 100 (10%)" in words
    assert "0 bytes, no limit" in words
    page = viewer.get("/").content.decode()
    assert f'/profiles/{profile.pk}/streams/?sync=drifted"' in page
    assert "/jobs/?profile=payments-prod&amp;status=failed" in page
    assert "search-prod" not in page and "New connection" not in page
    drifted = viewer.get(f"/profiles/{profile.pk}/streams/?sync=drifted").content.decode()
    assert "s3" in drifted and "s4" in drifted and "s0" not in drifted
    # Without a scheduler, the page says the checks stopped rather than look current.
    assert "No scheduler is running" in page

    outsider = logged_in(member(Team.objects.create(name="empty"), "olaf", Role.OPERATOR))
    page = outsider.get("/").content.decode()
    assert "No connections yet" in page and "payments-prod" not in page
    assert "Ask an admin of your team" in page


def test_a_check_older_than_the_scheduler_allows_is_shown_stale(
    admin_client: Client, profile: Profile,
) -> None:
    ConnectionHealth.objects.create(profile=profile, checked_at=timezone.now() - timedelta(
        hours=1), ok=True, report={"version": "2.15.1"})
    assert state(admin_client, profile) == "stale"
    assert "not checked lately" in card(admin_client, profile)


def test_one_scheduler_a_deployment_the_second_waits_then_takes_over(
    tmp_path: Path, profile: Profile,
) -> None:
    first = Scheduler(tmp_path, "first")
    second = None
    try:
        wait_until(lambda: first.holding, 10, first.log_tail)
        second = Scheduler(tmp_path, "second")
        assert second.waiting_text in second.log_text() and not second.holding
        first.kill()  # as a crash: the lock is not let go, it expires (SINGLETON_TTL, 3 s)
        killed = time.monotonic()
        wait_until(lambda: second.holding, 15, second.log_tail)
        assert time.monotonic() - killed < 10
        wait_until(lambda: ConnectionHealth.objects.filter(profile=profile).exists(), 20,
                   second.log_tail)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_tidying_drops_old_samples_and_checks_but_not_a_check_an_entry_names(
    profile: Profile,
) -> None:
    old = timezone.now() - timedelta(days=30)
    StreamSample.objects.create(profile=profile, stream="s", at=old, messages=1, bytes=1)
    StreamSample.objects.create(profile=profile, stream="s", at=timezone.now(), messages=2,
                                bytes=2)
    ConsumerSample.objects.create(profile=profile, stream="s", consumer="c", at=old, pending=1,
                                  ack_pending=0)
    jobs = [Job.objects.create(kind=JobKind.CONNECTION_CHECK, profile=profile,
                               profile_name=profile.name, status=JobStatus.SUCCEEDED,
                               finished_at=old) for _ in range(2)]
    AuditEvent.objects.record("stream.changed_outside", audit.Context(), target_type="stream",
                              target_name="s", profile=profile, job=jobs[1], outcome="succeeded")
    assert checks.tidy() == 3
    assert list(StreamSample.objects.values_list("messages", flat=True)) == [2]
    assert not ConsumerSample.objects.exists()
    assert list(Job.objects.values_list("pk", flat=True)) == [jobs[1].pk]


def test_the_compose_healthchecks_of_the_worker_listener_and_scheduler(
    settings: Any, redis_server: Any,
) -> None:
    """`manage.py alive …`, as docker-compose's healthchecks run it."""
    def alive(part: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", "alive", part], cwd=ROOT,
                              capture_output=True, text=True, timeout=60,
                              env=dev_environment(celery_app.conf.broker_url))

    assert alive("scheduler").returncode == 1
    WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.SCHEDULER)
    assert alive("scheduler").returncode == 0
    stale = alive("listener")
    assert stale.returncode == 1 and "advisory listener last seen never" in stale.stderr
    WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.LISTENER)
    assert alive("listener").returncode == 0
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=5))
    assert re.search(r"last seen 30\d s ago", alive("listener").stderr)



def test_the_scheduler_s_checks_stay_out_of_the_job_lists_unless_asked_for(
    admin_client: Client, profile: Profile,
) -> None:
    asked = Job.objects.create(kind=JobKind.STREAM_CREATE, profile=profile, target="asked",
                               profile_name=profile.name, status=JobStatus.SUCCEEDED)
    checked = Job.objects.create(kind=JobKind.CONNECTION_CHECK, profile=profile,
                                 profile_name=profile.name, status=JobStatus.SUCCEEDED)
    listed = admin_client.get("/jobs/").content.decode()
    assert f"/jobs/{asked.pk}/" in listed and f"/jobs/{checked.pk}/" not in listed
    listed = admin_client.get("/jobs/?kind=connection_check").content.decode()
    assert f"/jobs/{checked.pk}/" in listed and f"/jobs/{asked.pk}/" not in listed
    page = admin_client.get(f"/profiles/{profile.pk}/").content.decode()
    assert f"/jobs/{asked.pk}/" in page and f"/jobs/{checked.pk}/" not in page


def test_every_destructive_button_says_what_it_destroys(
    admin_client: Client, profile: Profile,
) -> None:
    Stream.objects.create(profile=profile, name="ORDERS", messages=3, read_at=timezone.now(),
                          info={"config": {"name": "ORDERS", "subjects": ["o.>"]}})
    base = f"/profiles/{profile.pk}"
    assert "Delete stream ORDERS and its 3 messages</button>" in admin_client.get(
        f"{base}/stream/ORDERS/delete/").content.decode()
    assert "Purge messages of ORDERS</button>" in admin_client.get(
        f"{base}/stream/ORDERS/purge/").content.decode()
    page = admin_client.get(f"{base}/delete/").content.decode()
    assert f"Delete connection {profile.name}</button>" in page
    assert "nothing on the broker changes" in page


def test_empty_lists_say_what_to_do_next(admin_client: Client) -> None:
    assert "add the broker you manage with New connection" in admin_client.get(
        "/profiles/").content.decode()
    assert "every broker operation" in admin_client.get("/jobs/").content.decode()
    assert "No jobs match: clear the filters" in admin_client.get(
        "/jobs/?status=failed").content.decode()
    viewer = logged_in(member(Team.objects.create(name="ops"), "vic", Role.VIEWER))
    assert "ask an admin of your team to add one" in viewer.get("/profiles/").content.decode()


def test_upgrading_keeps_each_profile_s_last_connection_test_as_its_health() -> None:
    before = [("streams", "0022_health_checks")]
    after = [("streams", "0023_check_outcome_in_health")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    team = old.get_model("streams", "Team").objects.create(name="Default")
    tested = timezone.now() - timedelta(hours=2)
    make = old.get_model("streams", "Profile").objects.create
    up = make(name="up", servers="nats://127.0.0.1:1", team=team, last_check_at=tested,
              last_check_ok=True, last_server_version="2.10.4")
    down = make(name="down", servers="nats://127.0.0.1:1", team=team, last_check_at=tested,
                last_check_ok=False, last_check_error="cannot reach 127.0.0.1:1")
    make(name="never", servers="nats://127.0.0.1:1", team=team)
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    health = {h.profile_id: h for h in ConnectionHealth.objects.all()}
    assert set(health) == {up.pk, down.pk}
    assert health[up.pk].ok and health[up.pk].report == {"version": "2.10.4"}
    assert not health[down.pk].ok and health[down.pk].error == "cannot reach 127.0.0.1:1"
    assert health[up.pk].checked_at == tested


def test_a_listing_drops_the_consumers_of_streams_gone_and_keeps_the_others(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    profile = make_profile(own_server, name="listed")
    for name in ("kept", "dropped"):
        api(own_server.url, f"STREAM.CREATE.{name}", {"name": name, "subjects": [name]})
        Consumer.objects.create(profile=profile, stream_name=name, name="reader",
                                read_at=timezone.now())
    api(own_server.url, "STREAM.DELETE.dropped")
    assert refresh_list(client_alice, profile).status == JobStatus.SUCCEEDED
    assert list(Consumer.objects.values_list("stream_name", flat=True)) == ["kept"]
