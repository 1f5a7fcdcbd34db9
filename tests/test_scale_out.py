"""Scale out, as the README's "Scale out" section runs it: two web processes and three Celery
workers (each with a node name of its own) on one PostgreSQL, one Redis and one advisory
listener. 300 stream creates across 10 connections are posted through both web processes, and
one worker is killed with SIGKILL in the middle of a job. Every job ends exactly once, one
connection's jobs never overlap, the killed worker's job is reaped with the reason while the
others succeed, and the audit chain all those processes appended to at once is intact."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from streams.models import AuditEvent, Job, JobStatus, Profile, WorkerHeartbeat
from streams.outside import ACTION as CHANGED_OUTSIDE
from tests.support.jobs import job_id_in
from tests.support.listener import Listener
from tests.support.nats_server import NatsServer
from tests.support.postgres_server import pytest_on_postgresql
from tests.support.project import ROOT, subprocess_database_url
from tests.support.proxies import LostReplyProxy
from tests.support.raw_jetstream import create_raw
from tests.support.redis_server import RedisServer
from tests.support.stream_forms import SEED_FORM
from tests.support.waiting import wait_until
from tests.support.web import Web, WebClient
from tests.support.worker import Worker, running_jobs

pytestmark = pytest.mark.django_db(transaction=True)

PROFILES = 10
JOBS = 300
PER_PROFILE = JOBS // PROFILES
LANES = 4  # posts in flight at once, two on each web process
RUN_TIMEOUT = 10  # the workers' JOB_RUN_TIMEOUT: the killed worker's job is reaped after it
WAITING = 10  # jobs of the slow connection waiting behind its slow one when the worker dies
PASSWORD = "scale-out-pass"
SLOW = "s000"  # the first job, on the first connection: the proxy loses its create's answer


def posting_order() -> list[int]:
    """Which connection each post is for: the first connection's jobs every other post until
    they are all sent, so that many of them wait behind its slow first job, then the others'
    in turn."""
    others = [n % (PROFILES - 1) + 1 for n in range(JOBS - PER_PROFILE)]
    mixed = [profile for pair in zip([0] * PER_PROFILE, others, strict=False) for profile in pair]
    return mixed + others[PER_PROFILE:]


def test_two_web_processes_and_three_workers_share_one_postgresql(
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    if connection.vendor != "postgresql":
        # The suite's own database is SQLite: the test runs in a session on PostgreSQL.
        pytest_on_postgresql([request.node.nodeid], tmp_path / "pytest", timeout=300)
        return
    with ExitStack() as running:
        nats = NatsServer.start(tmp_path / "nats", name="scale-out")
        running.callback(nats.stop)
        redis = RedisServer.start(tmp_path / "redis")
        running.callback(redis.stop)
        # The first connection reaches the server through a proxy that loses the answer to
        # one create: its job waits 5 s for it, long enough to kill its worker meanwhile.
        proxy = running.enter_context(
            LostReplyProxy(nats.port, f"$JS.API.STREAM.CREATE.{SLOW}"))
        profiles = [Profile.objects.create(
            name=f"scale-{n}", servers=proxy.url if n == 0 else nats.url,
            last_server_version=nats.version, record_outside=n == 1) for n in range(PROFILES)]
        get_user_model().objects.create_superuser("operator", "", PASSWORD)

        listener = Listener(tmp_path, REDIS_URL=redis.url)
        running.callback(listener.stop)
        workers: dict[str, Worker] = {}
        for n in range(1, 4):
            workdir = tmp_path / f"worker{n}"
            workdir.mkdir()
            worker = Worker(redis.url, workdir, "-n", f"worker{n}@%h",
                            JOB_RUN_TIMEOUT=str(RUN_TIMEOUT), JOB_REAP_INTERVAL="0.5")
            running.callback(worker.stop)
            workers[f"worker{n}"] = worker
        webs = []
        for n in range(1, 3):
            workdir = tmp_path / f"web{n}"
            workdir.mkdir()
            web = Web(workdir, redis.url, JOB_WAIT="0")  # the page polls; posts answer at once
            running.callback(web.stop)
            webs.append(web)
        listener.wait_following(profiles[1].name)

        order = posting_order()
        clients = [WebClient(webs[lane % 2].url) for lane in range(LANES)]
        for client in clients:
            client.log_in("operator", PASSWORD)

        def post(lane: int) -> list[int]:
            """Every LANES-th create, through web process 1 or 2, as a browser posts it."""
            jobs = []
            for n in range(lane, JOBS, LANES):
                status, html = clients[lane].post(
                    reverse("stream_create", args=[profiles[order[n]].pk]),
                    {**SEED_FORM, "name": f"s{n:03d}", "subjects": f"scale.{n}"},
                    {"HX-Request": "true"})
                assert status == 200
                jobs.append(job_id_in(html))
            return jobs

        with ThreadPoolExecutor(LANES) as pool:
            lanes = [pool.submit(post, lane) for lane in range(LANES)]

            # The slow create reached the server, whose answer was lost: its job is mid-call,
            # and the connection's next jobs wait behind it.
            wait_until(lambda: proxy.dropped, 60, "the slow create never reached the server")
            wait_until(lambda: Job.objects.filter(profile=profiles[0], status=JobStatus.QUEUED)
                       .count() >= WAITING, 3, f"fewer than {WAITING} jobs wait behind the slow")
            slow = Job.objects.get(target=SLOW)
            node = wait_until(lambda: next((node for node, jobs in running_jobs(redis.url).items()
                                            if slow.pk in jobs), None),
                              3, "no worker says it runs the slow job")
            doomed = workers[node.partition("@")[0]]
            doomed.kill()
            killed_at = timezone.now()
            running_when_killed = set(Job.objects.filter(status=JobStatus.RUNNING)
                                      .values_list("pk", flat=True))
            assert slow.pk in running_when_killed, "the slow job ended before its worker died"

            # A change made outside meanwhile: the listener appends to the chain too.
            create_raw(nats.url, {"name": "made_outside", "subjects": ["outside.>"]})
            submitted = [job for lane in lanes for job in lane.result(timeout=120)]

        assert len(set(submitted)) == JOBS
        # Both web processes took their half; three workers, each by its own node name.
        assert [web.log_text().count('"POST /profiles/') for web in webs] == [JOBS // 2] * 2
        assert {name.partition("@")[0] for name in WorkerHeartbeat.objects.workers()
                .values_list("name", flat=True)} == set(workers)

        def unfinished() -> list[tuple[int, str, str]]:
            return list(Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
                        .values_list("pk", "profile_name", "status"))

        wait_until(lambda: not unfinished(), 90,
                   lambda: f"jobs still unfinished: {unfinished()}\n"
                           + "\n".join(w.log_tail(20) for w in workers.values()))
        wait_until(lambda: AuditEvent.objects.filter(action=CHANGED_OUTSIDE,
                                                     target_name="made_outside").exists(),
                   20, lambda: f"the change made outside was not recorded\n{listener.log_tail()}")
        for worker in workers.values():
            if worker is not doomed:
                worker.check_alive()

        jobs = {job.pk: job for job in Job.objects.filter(pk__in=submitted)}
        failed = {pk for pk, job in jobs.items() if job.status == JobStatus.FAILED}
        # The killed worker's job (and the other it may have been running) was reaped, saying
        # why; every other job succeeded, many of them after the worker died.
        assert slow.pk in failed and failed <= running_when_killed and len(failed) <= 2
        assert {jobs[pk].error for pk in failed} == {Job.WORKER_STOPPED}
        assert all(job.status == JobStatus.SUCCEEDED for pk, job in jobs.items()
                   if pk not in failed)
        assert sum(job.started_at > killed_at for job in jobs.values()) > JOBS / 2

        # Each job ended exactly once: one request, one end, one creation for each success.
        entries = Counter(AuditEvent.objects.filter(job__in=submitted)
                          .values_list("job_id", "action", "outcome"))
        for pk, job in jobs.items():
            created = {(pk, "stream.created", "succeeded"): 1} if pk not in failed else {}
            assert {entry: count for entry, count in entries.items() if entry[0] == pk} == {
                (pk, "job.requested", "requested"): 1, (pk, "job.finished", job.status): 1,
                **created}, pk

        # One connection's jobs one after another, never two at once.
        for profile in profiles:
            ran = sorted((job for job in jobs.values() if job.profile_id == profile.pk),
                         key=lambda job: job.started_at)
            assert len(ran) == PER_PROFILE
            for before, after in pairwise(ran):
                assert after.started_at >= before.finished_at, (before.pk, after.pk)

        # The chain never forked: every seq once, none skipped, each entry after its own
        # predecessor; and verify_audit walks it intact.
        chain = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
        seqs = [seq for seq, _, _ in chain]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert all(after[1] == before[2] for before, after in pairwise(chain))
        verified = subprocess.run(
            [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, capture_output=True,
            text=True, timeout=60, env={**os.environ, "DATABASE_URL": subprocess_database_url()})
        assert verified.returncode == 0, verified.stderr
        assert f"audit chain intact: {len(chain)} entries" in verified.stdout
