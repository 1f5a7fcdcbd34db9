"""Applying 1,000 definitions to an empty server, against a plain nats-py script.

    .venv/bin/python bench/bench_apply.py [--streams 1000]

From the click (the POST that starts apply) to the last outcome recorded (the apply job's
closing audit entry, committed after every stream's definition, row and entry), through the
real view, Redis, Celery worker and nats-server; against a sequential nats-py `js.add_stream`
loop over the same configs on another empty server, in the same run: once before and once
after ours, so that a machine speeding up or slowing down shows. Target: at most 0.5× the
loop. Also printed: the plan's time, from the POST that asks for it to its steps stored.

Starts its own nats-servers, redis-server, SQLite database and Celery worker in a temporary
directory, with production settings (DEBUG off, throwaway keys), and stops them at the end."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from nats.js.api import StreamConfig  # noqa: E402

from bench.harness import logged_in_client, stack, wait_succeeded  # noqa: E402


def config(index: int) -> dict[str, Any]:
    """A definition as the create form makes it (the seed's answers), one subject each."""
    return {"name": f"app_{index:05d}", "subjects": [f"app.{index}.>"], "storage": "file",
            "num_replicas": 1, "retention": "limits", "discard": "old", "max_msgs": -1,
            "max_msgs_per_subject": -1, "max_bytes": -1, "max_age": 0, "max_msg_size": -1,
            "duplicate_window": 120_000_000_000, "allow_rollup_hdrs": False,
            "deny_delete": False, "deny_purge": False}


def raw_loop(url: str, count: int) -> float:
    """What a script would do: one connection, `add_stream` after `add_stream`."""

    async def go() -> float:
        nc = await nats.connect(url)
        js = nc.jetstream()
        configs = [StreamConfig.from_response(config(index)) for index in range(count)]
        started = time.perf_counter()
        for stream in configs:
            await js.add_stream(stream)
        elapsed = time.perf_counter() - started
        await nc.close()
        return elapsed

    return asyncio.run(go())


def plan_id_of(response: Any) -> int:
    location = response.get("HX-Redirect", "")
    if response.status_code != 200 or "/plans/" not in location:
        raise RuntimeError(f"no plan in the response ({response.status_code}): "
                           f"{response.content.decode()[:500]}")
    return int(location.rstrip("/").rsplit("/", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()

    with stack("ours", "raw-before", "raw-after") as running:
        from django.urls import reverse

        from streams.models import Job, Plan, Profile, StreamDefinition

        ours_server = running.nats["ours"]
        running.start_worker()
        profile = Profile.objects.create(name="bench", servers=ours_server.url,
                                         last_server_version=ours_server.version)
        StreamDefinition.objects.bulk_create(
            StreamDefinition(profile=profile, name=f"app_{index:05d}", config=config(index))
            for index in range(args.streams))
        client = logged_in_client()
        pool = os.environ.get("WORKER_POOL", "prefork")
        print(f"nats-server {ours_server.version} on loopback; SQLite; DEBUG off; "
              f"./dev worker ({pool} pool); {args.streams} streams, file storage")

        loop_before = raw_loop(running.nats["raw-before"].url, args.streams)

        started = time.time()
        response = client.post(reverse("plan_create", args=[profile.pk]), {"scope": "profile"},
                               secure=True, HTTP_HX_REQUEST="true")
        plan = Plan.objects.get(pk=plan_id_of(response))
        plan_time = wait_succeeded(plan.plan_job_id) - started
        plan.refresh_from_db()
        creates = sum(1 for step in plan.steps if step["action"] == "create")
        if creates != args.streams:
            raise RuntimeError(f"the plan creates {creates} streams, not {args.streams}")

        started = time.time()
        response = client.post(reverse("plan_apply", args=[plan.pk]), secure=True,
                               HTTP_HX_REQUEST="true")
        plan.refresh_from_db()
        if response.status_code != 200 or plan.apply_job_id is None:
            raise RuntimeError(f"apply did not start: {response.content.decode()[:500]}")
        apply_time = wait_succeeded(plan.apply_job_id, timeout=600) - started
        job = Job.objects.get(pk=plan.apply_job_id)
        if job.result.get("created") != args.streams:
            raise RuntimeError(f"apply did not create every stream: {job.result}")

        loop_after = raw_loop(running.nats["raw-after"].url, args.streams)

        loop = (loop_before + loop_after) / 2
        print(f"\n{'':<40}{'seconds':>10}")
        print(f"{'plan ' + str(args.streams) + ' (POST to steps stored)':<40}{plan_time:>10.2f}")
        print(f"{'apply (POST to last outcome recorded)':<40}{apply_time:>10.2f}")
        print(f"{'nats-py add_stream loop, before':<40}{loop_before:>10.2f}")
        print(f"{'nats-py add_stream loop, after':<40}{loop_after:>10.2f}")
        print(f"\napply / loop: {apply_time / loop:.2f}× (before {apply_time / loop_before:.2f}×, "
              f"after {apply_time / loop_after:.2f}×); target ≤ 0.5×")


if __name__ == "__main__":
    main()
