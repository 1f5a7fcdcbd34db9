"""Paging through a stream of 1,000,000 messages: a page of 50 from the click, against a raw
nats-py loop of the same 50 gets, in one run on the same loopback server.

    .venv/bin/python bench/bench_messages.py [--messages 1000000] [--pages 30]

Dashboard: the browse form's POST (as htmx sends it) to its response holding the 50 messages,
through the real view, Redis, Celery worker (`./dev worker`) and nats-server, with production
settings. Raw: the same 50 direct gets (next by subject from the page's first sequence) on an
open nats-py connection. Pages start at random sequences over the whole stream, the two taken
alternately. Target: every page (p95) under 200 ms.

Starts its own servers, database and worker in a temporary directory and stops them at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402

from bench.harness import give_up, logged_in_client, percentile, stack, within  # noqa: E402

STREAM = "paged"
PAGE = 50


BATCH = 5_000  # publishes in flight before their acknowledgements are awaited
BATCH_TIMEOUT = 60.0  # seconds for one batch to be acknowledged


async def fill(url: str, count: int) -> None:
    """`count` small messages, published in batches whose acknowledgements are awaited: each
    one stored when this returns, or the run ends saying which batch was not."""
    nc = await within(10, f"connecting to {url}",
                      nats.connect(url, allow_reconnect=False, connect_timeout=5))
    js = nc.jetstream(publish_async_max_pending=BATCH)
    await within(10, "creating the stream",
                 js.add_stream(name=STREAM, subjects=[f"{STREAM}.*"], allow_direct=True))
    began = time.perf_counter()
    for start in range(0, count, BATCH):
        end = min(start + BATCH, count)
        what = f"acknowledgements of messages {start + 1:,} to {end:,}"
        try:
            acks = [await js.publish_async(f"{STREAM}.{'ab'[seq % 2]}", b'{"order": %d}' % seq,
                                           wait_stall=BATCH_TIMEOUT)
                    for seq in range(start, end)]
            await within(BATCH_TIMEOUT, what, asyncio.gather(*acks))
        except nats.errors.Error as error:  # refused, no stream, or stalled
            give_up(f"{what}: {type(error).__name__} {error}")
    stored = (await within(10, "reading the stream", js.stream_info(STREAM))).state.messages
    if stored != count:
        give_up(f"{stored:,} messages stored of the {count:,} acknowledged")
    print(f"stored {count:,} messages in {time.perf_counter() - began:.0f} s", flush=True)
    await nc.close()


async def raw_page(nc: nats.NATS, start: int) -> float:
    began = time.perf_counter()
    seq = start
    for _ in range(PAGE):
        reply = await nc.request(f"$JS.API.DIRECT.GET.{STREAM}",
                                 json.dumps({"seq": seq, "next_by_subj": ">"}).encode())
        seq = int(reply.headers["Nats-Sequence"]) + 1
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=30)
    args = parser.parse_args()

    with stack("nats") as running:
        from django.urls import reverse
        from django.utils import timezone

        from streams.models import Profile, Stream

        nats_server = running.nats["nats"]
        asyncio.run(fill(nats_server.url, args.messages))
        running.start_worker()
        profile = Profile.objects.create(name="bench", servers=nats_server.url,
                                         last_server_version=nats_server.version)
        Stream.objects.create(profile=profile, name=STREAM, subjects=[f"{STREAM}.*"],
                              read_at=timezone.now())
        client = logged_in_client()
        browse = reverse("message_browse", args=[profile.pk, STREAM])

        def ours(start: int) -> float:
            began = time.perf_counter()
            response = client.post(browse, {"seq": str(start)}, HTTP_HX_REQUEST="true",
                                   secure=True)
            elapsed = time.perf_counter() - began
            # The view waits for the job at most JOB_WAIT: a page still reading is a failure.
            shown = response.content.decode().count('class="message-row"')
            if shown != PAGE:
                give_up(f"page at {start}: {shown} messages ({response.status_code}), "
                        f"{response.content.decode()[:500]}")
            return elapsed

        async def raw_all(starts: list[int]) -> list[float]:
            nc = await within(10, "connecting", nats.connect(nats_server.url,
                                                             allow_reconnect=False))
            try:  # each direct get is a request with nats-py's own 0.5 s timeout
                return [await raw_page(nc, start) for start in starts]
            finally:
                await nc.close()

        rng = random.Random(11)
        starts = [rng.randrange(1, args.messages - PAGE) for _ in range(args.pages)]
        ours(starts[0])  # the worker's first connection
        dashboard, raw = [], []
        for start in starts:  # alternating, so both see the same machine
            dashboard.append(ours(start))
            raw.append(asyncio.run(raw_all([start]))[0])
        print(f"\nnats-server {nats_server.version}; {args.messages:,} messages; pages of "
              f"{PAGE} at {args.pages} random sequences")
        print(f"{'':<22}{'dashboard':>12}{'raw nats-py':>14}{'ratio':>9}")
        for label, measure in (("median", statistics.median),
                               ("p95", lambda values: percentile(values, 0.95))):
            mine, theirs = measure(dashboard) * 1000, measure(raw) * 1000
            print(f"{'page, ' + label:<22}{mine:>10.1f} ms{theirs:>11.1f} ms{mine / theirs:>8.1f}×")
        print("\ntarget: a page (p95) under 200 ms from the click")


if __name__ == "__main__":
    main()
