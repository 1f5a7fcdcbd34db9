"""Applying 1,000 definitions to an empty server, against a plain nats-py script.

    .venv/bin/python bench/bench_apply.py [--streams 1000] [--rounds 3]

From the click (the POST that starts apply) to the last outcome recorded (the apply job's
closing audit entry, committed after every stream's definition, row and entry), through the
real view, Redis, Celery worker and nats-server; against a sequential nats-py `js.add_stream`
loop over the same configs on another empty server, once before and once after ours, so that
a machine speeding up or slowing down shows. Target: at most 0.5× the loop, as the median of
the rounds (each on empty servers of its own). Also printed: the plan's time, from the POST
that asks for it to its steps stored, and a bare nats-py script with as many creates in flight
as apply (no recording at all): the floor on this machine.

Starts its own nats-servers, redis-server, SQLite database and Celery worker in a temporary
directory, with production settings (DEBUG off, throwaway keys), and stops them at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.js.api import StreamConfig  # noqa: E402

from bench.harness import Stack, logged_in_client, stack, wait_succeeded, within  # noqa: E402
from streams.broker.streams import APPLY_CONCURRENCY  # noqa: E402


def config(index: int) -> dict[str, Any]:
    """A definition as the create form makes it (the seed's answers), one subject each."""
    return {"name": f"app_{index:05d}", "subjects": [f"app.{index}.>"], "storage": "file",
            "num_replicas": 1, "retention": "limits", "discard": "old", "max_msgs": -1,
            "max_msgs_per_subject": -1, "max_bytes": -1, "max_age": 0, "max_msg_size": -1,
            "duplicate_window": 120_000_000_000, "allow_rollup_hdrs": False,
            "deny_delete": False, "deny_purge": False}


def raw_loop(url: str, count: int, in_flight: int = 1) -> float:
    """What a script would do: one connection, `add_stream` after `add_stream`; or with
    `in_flight` of them at once."""

    async def go() -> float:
        nc = await nats.connect(url)
        js = nc.jetstream()
        configs = [StreamConfig.from_response(config(index)) for index in range(count)]
        slots = asyncio.Semaphore(in_flight)

        async def add(stream: StreamConfig) -> None:
            async with slots:
                await js.add_stream(stream)

        started = time.perf_counter()
        await asyncio.gather(*(add(stream) for stream in configs))
        elapsed = time.perf_counter() - started
        await nc.close()
        return elapsed

    return asyncio.run(within(600, f"{count} raw creates", go()))


def plan_id_of(response: Any) -> int:
    location = response.get("HX-Redirect", "")
    if response.status_code != 200 or "/plans/" not in location:
        raise RuntimeError(f"no plan in the response ({response.status_code}): "
                           f"{response.content.decode()[:500]}")
    return int(location.rstrip("/").rsplit("/", 1)[1])


def apply_round(running: Stack, client: Any, round_number: int, count: int
                ) -> tuple[float, float]:
    """Plan and apply `count` definitions on this round's empty server: (plan, apply) seconds."""
    from django.urls import reverse

    from streams.models import Job, Plan, Profile, StreamDefinition

    server = running.nats[f"ours-{round_number}"]
    profile = Profile.objects.create(name=f"bench-{round_number}", servers=server.url,
                                     last_server_version=server.version)
    StreamDefinition.objects.bulk_create(
        StreamDefinition(profile=profile, name=f"app_{index:05d}", config=config(index))
        for index in range(count))

    started = time.time()
    response = client.post(reverse("plan_create", args=[profile.pk]), {"scope": "profile"},
                           secure=True, HTTP_HX_REQUEST="true")
    plan = Plan.objects.get(pk=plan_id_of(response))
    plan_time = wait_succeeded(plan.plan_job_id) - started
    plan.refresh_from_db()
    creates = sum(1 for step in plan.steps if step["action"] == "create")
    if creates != count:
        raise RuntimeError(f"the plan creates {creates} streams, not {count}")

    started = time.time()
    response = client.post(reverse("plan_apply", args=[plan.pk]), secure=True,
                           HTTP_HX_REQUEST="true")
    plan.refresh_from_db()
    if response.status_code != 200 or plan.apply_job_id is None:
        raise RuntimeError(f"apply did not start: {response.content.decode()[:500]}")
    apply_time = wait_succeeded(plan.apply_job_id, timeout=600) - started
    job = Job.objects.get(pk=plan.apply_job_id)
    if job.result.get("created") != count:
        raise RuntimeError(f"apply did not create every stream: {job.result}")
    return plan_time, apply_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    servers = [f"{name}-{number}" for number in range(args.rounds)
               for name in ("ours", "loop-before", "loop-after", "bare")]
    with stack(*servers) as running:
        running.start_worker()
        client = logged_in_client()
        pool = os.environ.get("WORKER_POOL", "prefork")
        print(f"nats-server {running.nats[servers[0]].version} on loopback; SQLite; DEBUG off; "
              f"./dev worker ({pool} pool); {args.streams} streams, file storage; "
              f"{args.rounds} rounds on empty servers\n")
        print(f"{'round':<7}{'plan s':>8}{'apply s':>9}{'loop before':>13}{'loop after':>12}"
              f"{'apply/loop':>12}{'bare script':>13}{'bare/loop':>11}")
        ratios, bare_ratios, plans = [], [], []
        for number in range(args.rounds):
            url = {name: running.nats[f"{name}-{number}"].url
                   for name in ("loop-before", "loop-after", "bare")}
            loop_before = raw_loop(url["loop-before"], args.streams)
            plan_time, apply_time = apply_round(running, client, number, args.streams)
            loop_after = raw_loop(url["loop-after"], args.streams)
            bare = raw_loop(url["bare"], args.streams, in_flight=APPLY_CONCURRENCY)
            loop = (loop_before + loop_after) / 2
            ratios.append(apply_time / loop)
            bare_ratios.append(bare / loop)
            plans.append(plan_time)
            print(f"{number + 1:<7}{plan_time:>8.2f}{apply_time:>9.2f}{loop_before:>13.2f}"
                  f"{loop_after:>12.2f}{ratios[-1]:>11.2f}×{bare:>13.2f}{bare_ratios[-1]:>10.2f}×",
                  flush=True)
        print(f"\napply / loop, median of {args.rounds}: {statistics.median(ratios):.2f}× "
              f"(target ≤ 0.5×); a bare script with {APPLY_CONCURRENCY} in flight: "
              f"{statistics.median(bare_ratios):.2f}×; plan of {args.streams}: "
              f"{statistics.median(plans):.2f} s")


if __name__ == "__main__":
    main()
