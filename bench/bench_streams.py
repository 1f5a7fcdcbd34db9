"""Stream benchmarks against raw nats-py, measured in one run on the same loopback server.

    .venv/bin/python bench/bench_streams.py [--creates 200] [--streams 10000]

(1) create: from the create form's POST (urlencoded, as htmx sends it) to the job's success
    committed in the database, through the real view, Redis, Celery worker and nats-server;
    against nats-py `add_stream` on a fresh connection, the two alternating. Target: median ≤ 5×
    raw. Also printed: the ratio against warm raw creates (the third of three back to back,
    taken at the same moments), raw's best case.
(2) listing: all streams into the dashboard's database (a stream_list job) against a raw
    paginated nats-py `streams_info` listing. Target ≤ 1.2× raw.

Starts its own nats-server, redis-server, SQLite database and Celery worker in a temporary
directory, with production settings (DEBUG off, throwaway keys), and stops them at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig  # noqa: E402

from bench.harness import (  # noqa: E402
    give_up,
    job_id_of,
    logged_in_client,
    percentile,
    stack,
    wait_succeeded,
    within,
)

SETTLE = 0.05  # seconds of quiet before each timed create
FORM_ENCODED = "application/x-www-form-urlencoded"
SEED_FORM = {
    "storage": "file", "num_replicas": "1", "retention": "limits", "discard": "old",
    "max_msgs": "-1", "max_msgs_per_subject": "-1", "max_bytes": "-1", "max_age": "-1",
    "max_msg_size": "-1", "duplicate_window": "2m0s", "allow_rollup_hdrs": "no",
    "allow_delete": "yes", "allow_purge": "yes",
}


def bench_creates(client: Any, profile_id: int, url: str,
                  count: int) -> tuple[list, list, list]:
    """Alternates one dashboard create and one raw create, so that both see the same machine (on
    a shared host the speed of everything drifts over seconds), each started after a pause in
    which the other's leftover work (the worker's acknowledgement, say) is done. Also returns
    warm raw creates (see below), the best case of raw, taken at the same moments."""
    from django.urls import reverse

    create_url = reverse("stream_create", args=[profile_id])
    loop = asyncio.new_event_loop()

    async def raw_create(name: str) -> float:
        config = StreamConfig(
            name=name, subjects=[f"{name}.>"], storage=StorageType.FILE,
            num_replicas=1, retention=RetentionPolicy.LIMITS, discard=DiscardPolicy.OLD,
            max_msgs=-1, max_msgs_per_subject=-1, max_bytes=-1, max_age=0,
            max_msg_size=-1, duplicate_window=120, allow_rollup_hdrs=False,
            deny_delete=False, deny_purge=False,
        )
        started = time.perf_counter()
        nc = await nats.connect(url)
        await nc.jetstream().add_stream(config)
        await nc.close()
        return time.perf_counter() - started

    ours: list[float] = []
    raw: list[float] = []
    warm: list[float] = []
    for index in range(count):
        time.sleep(SETTLE)
        raw.append(loop.run_until_complete(within(30, f"raw create {index}",
                                                  raw_create(f"raw_{index:04d}"))))
        time.sleep(SETTLE)
        # What htmx sends for the form: a urlencoded body and the HX-Request header.
        body = urlencode({**SEED_FORM, "name": f"ours_{index:04d}", "subjects": f"ours.{index}"})
        started = time.time()
        response = client.post(create_url, body, content_type=FORM_ENCODED, secure=True,
                               HTTP_HX_REQUEST="true")
        ours.append(wait_succeeded(job_id_of(response)) - started)
        # For reference, at the same moment: the third of three raw creates back to back,
        # with nats-server and this process warm from the two before.
        burst = [loop.run_until_complete(within(30, f"warm raw create {index}",
                                                raw_create(f"warm_{index:04d}_{n}")))
                 for n in range(3)]
        warm.append(burst[-1])
    loop.close()
    return ours, raw, warm


def fill(url: str, count: int) -> None:
    async def go() -> None:
        nc = await within(10, f"connecting to {url}", nats.connect(url, allow_reconnect=False))
        for start in range(0, count, 500):
            await within(60, f"creating streams {start} to {start + 499}", asyncio.gather(*(
                nc.request(f"$JS.API.STREAM.CREATE.many_{index:05d}", json.dumps({
                    "name": f"many_{index:05d}", "subjects": [f"many.{index}"],
                    "storage": "memory"}).encode(), timeout=30)
                for index in range(start, min(start + 500, count)))))
        await nc.close()

    asyncio.run(go())


def bench_listing(client: Any, profile_id: int, url: str, rounds: int) -> tuple[list, list, int]:
    from django.test.utils import override_settings
    from django.urls import reverse

    from streams.models import Stream

    async def raw() -> int:
        nc = await nats.connect(url)
        js = nc.jetstream(timeout=30)
        listed, offset = 0, 0
        while True:
            page = await js.streams_info(offset=offset)
            listed += len(page)
            offset += len(page)
            if len(page) < 256:
                break
        await nc.close()
        return listed

    raw_times, ours_times = [], []
    total = 0
    for _ in range(rounds):  # alternate, so both see the same server conditions
        started = time.perf_counter()
        total = asyncio.run(within(300, "the raw listing", raw()))
        raw_times.append(time.perf_counter() - started)
        started = time.time()
        # The POST answers once the job is submitted (JOB_WAIT=0): what is timed is the
        # listing into the database, not the page drawn after it.
        with override_settings(JOB_WAIT=0):
            response = client.post(reverse("stream_list_refresh", args=[profile_id]),
                                   secure=True, HTTP_HX_REQUEST="true")
        ours_times.append(wait_succeeded(job_id_of(response)) - started)
        stored = Stream.objects.filter(profile_id=profile_id).count()
        if stored != total:
            give_up(f"listed {total} streams but stored {stored}")
    return ours_times, raw_times, total


def row(label: str, ours: list[float], raw: list[float], measure: Callable[..., float]) -> str:
    mine, theirs = measure(ours) * 1000, measure(raw) * 1000
    return f"{label:<34}{mine:>10.1f} ms{theirs:>10.1f} ms{mine / theirs:>9.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with stack("nats") as running:
        from streams.models import Profile

        nats_server = running.nats["nats"]
        running.start_worker()
        profile = Profile.objects.create(name="bench", servers=nats_server.url,
                                         last_server_version=nats_server.version)
        client = logged_in_client()
        pool = os.environ.get("WORKER_POOL", "prefork")
        print(f"nats-server {nats_server.version} on loopback; SQLite; DEBUG off; "
              f"./dev worker ({pool} pool)")
        ours_create, raw_create, warm_create = bench_creates(client, profile.pk, nats_server.url,
                                                             args.creates)
        fill(nats_server.url, args.streams)
        ours_list, raw_list, total = bench_listing(client, profile.pk, nats_server.url,
                                                   args.rounds)
        print(f"\n{'':<34}{'dashboard':>13}{'raw nats-py':>13}{'ratio':>10}")
        print(row(f"create, median (n={args.creates})", ours_create, raw_create,
                  statistics.median))
        print(row(f"create, p95 (n={args.creates})", ours_create, raw_create,
                  lambda values: percentile(values, 0.95)))
        print(row("create, median, vs warm raw", ours_create, warm_create,
                  statistics.median))
        print(row(f"list {total} streams, median", ours_list, raw_list, statistics.median))
        print(row(f"list {total} streams, first run", ours_list[:1], raw_list[:1],
                  statistics.median))
        print("\ntargets: create median ≤ 5×, listing ≤ 1.2×")


if __name__ == "__main__":
    main()
