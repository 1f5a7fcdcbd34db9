"""The home page and /healthz: what an operator opens first thing, and what a load balancer
asks every few seconds.

    .venv/bin/python bench/bench_home.py [--profiles 50] [--streams 1000] [--requests 30]

(1) home: the overview of `--profiles` connections with `--streams` streams each (50 × 1,000
    = 50,000 stream rows, a mix of definition states, 10,000 jobs, a checked health each), as a
    superuser's GET through the Django test client, DEBUG off. It reads stored rows only; for
    scale, against what asking the brokers for the same would take with raw nats-py: each
    connection's account info and its `--streams`-stream listing, one connection after
    another (here 50 profiles on one server holding `--streams` streams). Target: the page
    median under 150 ms.
(2) /healthz: 200 requests (database, Redis, the worker's heartbeat and reaper, the
    scheduler's) with a real Celery worker running; target p99 under 50 ms.

Starts its own nats-server, redis-server, SQLite database and Celery worker in a temporary
directory and stops them at the end; every wait has a deadline."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

from bench.harness import (  # noqa: E402
    give_up,
    logged_in_client,
    percentile,
    stack,
    wait_for,
    within,
)


async def make_streams(url: str, count: int) -> None:
    nc = await within(10, "connecting", nats.connect(url))
    js = nc.jetstream()
    for index in range(count):
        await within(10, f"creating stream {index}",
                     js.add_stream(name=f"s{index:05}", subjects=[f"s{index:05}.>"]))
    await nc.close()


async def raw_overview(url: str, profiles: int) -> float:
    """Milliseconds for each connection's account info and complete stream listing, in turn."""
    started = time.perf_counter()
    for _ in range(profiles):
        nc = await within(10, "connecting", nats.connect(url))
        js = nc.jetstream()
        await within(10, "account info", js.account_info())
        await within(60, "listing", js.streams_info())
        await nc.close()
    return (time.perf_counter() - started) * 1000


def seed(url: str, profiles: int, streams: int) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from streams.definitions import StreamSync
    from streams.models import ConnectionHealth, Job, JobKind, JobStatus, Profile, Stream

    now = timezone.now()
    syncs = [StreamSync.IN_SYNC] * 6 + [StreamSync.DRIFTED, StreamSync.MISSING] + [
        StreamSync.UNMANAGED] * 2
    report = {"version": "2.15.1", "server_name": "bench", "cluster": "", "cluster_size": 1,
              "rtt_ms": 0.2, "account": {"storage": 1 << 30, "memory": 0, "streams": streams,
                                         "consumers": 0, "limits": {
                                             "max_storage": 10 << 30, "max_memory": -1,
                                             "max_streams": 5000, "max_consumers": -1}}}
    for p in range(profiles):
        profile = Profile.objects.create(name=f"bench-{p:02}", servers=url)
        Stream.objects.bulk_create(
            [Stream(profile=profile, name=f"s{index:05}", sync=syncs[index % len(syncs)],
                    messages=index, bytes=index * 100, read_at=now) for index in range(streams)],
            batch_size=2000)
        ConnectionHealth.objects.create(profile=profile, checked_at=now, ok=p % 10 != 0,
                                        ok_at=now, report=report)
        Job.objects.bulk_create(
            [Job(kind=JobKind.STREAM_CREATE, profile=profile, profile_name=profile.name,
                 status=JobStatus.FAILED if i % 7 == 0 else JobStatus.SUCCEEDED,
                 finished_at=now - timedelta(minutes=i)) for i in range(200)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=50)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    with stack("home") as running:
        url = running.nats["home"].url
        asyncio.run(make_streams(url, args.streams))
        seed(url, args.profiles, args.streams)
        running.start_worker()
        from streams.models import WorkerHeartbeat

        client = logged_in_client()
        page = client.get("/", secure=True)
        if page.status_code != 200 or page.content.count(b'class="card health') != args.profiles:
            give_up(f"the home page did not show {args.profiles} connections "
                    f"({page.status_code})")
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            client.get("/", secure=True)
            times.append((time.perf_counter() - started) * 1000)
        raw = statistics.median(asyncio.run(raw_overview(url, args.profiles)) for _ in range(3))
        median = statistics.median(times)
        print(f"home page, {args.profiles} profiles x {args.streams:,} streams "
              f"({args.profiles * args.streams:,} rows), n={args.requests}: "
              f"median {median:.1f} ms, p90 {percentile(times, 0.9):.1f} ms "
              f"(target < 150 ms: {'met' if median < 150 else 'NOT met'})")
        print(f"  asking the brokers instead (raw nats-py, account info + listing each): "
              f"{raw:.0f} ms; page / raw = {median / raw:.3f}")

        WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.SCHEDULER)  # no scheduler runs here
        wait_for(lambda: _healthz(client)[0] == 200, 30,
                 lambda: f"/healthz is not 200: {_healthz(client)[1][:300]}")
        health_times = []
        for _ in range(200):
            started = time.perf_counter()
            status, _body = _healthz(client)
            health_times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                give_up(f"/healthz answered {status}")
        p99 = percentile(health_times, 0.99)
        print(f"/healthz, n=200: median {statistics.median(health_times):.1f} ms, "
              f"p99 {p99:.1f} ms (target < 50 ms: {'met' if p99 < 50 else 'NOT met'})")


_thread = ThreadPoolExecutor(1)  # the async view, asked from a thread as gunicorn's are


def _healthz(client: object) -> tuple[int, str]:
    response = _thread.submit(client.get, "/healthz", secure=True,
                              HTTP_ACCEPT="text/plain").result(30)
    return response.status_code, response.content.decode()


if __name__ == "__main__":
    main()
