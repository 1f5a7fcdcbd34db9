"""The scheduler's periodic check of a connection (streams.checks): who the server is and the
account's JetStream usage and, when it samples, every stream and the consumers of the first
streams (by name) that have any: for the home page and the charts."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from streams.broker.connection import Connection
from streams.broker.consumers import list_consumers
from streams.broker.loop import run
from streams.broker.server import JOB_TIMEOUT, server_report
from streams.broker.streams import INFO_CONCURRENCY, listing


def check(conn: Connection, *, sample: bool, consumer_streams: int) -> dict[str, Any]:
    """{"report", "listing" (None unless sampling), "consumers": {stream: listed}}, on the
    worker's kept connection: a check every few seconds must not connect anew each time."""

    async def operation(nc: Client, js: JetStreamContext) -> dict[str, Any]:
        report = await server_report(nc, js)
        if not sample:
            return {"report": report, "listing": None, "consumers": {}}
        streams = await listing(nc, conn)
        with_consumers = sorted(info["config"]["name"] for info in streams["streams"]
                                if (info.get("state") or {}).get("consumer_count"))
        slots = asyncio.Semaphore(INFO_CONCURRENCY)

        async def consumers_of(name: str) -> dict[str, Any]:
            async with slots:
                return await list_consumers(nc, conn, name)

        chosen = with_consumers[:consumer_streams]
        listed = await asyncio.gather(*(consumers_of(name) for name in chosen))
        return {"report": report, "listing": {**streams, "server_version": report["version"]},
                "consumers": dict(zip(chosen, listed, strict=True))}

    return run(conn, operation, JOB_TIMEOUT + conn.connect_timeout * len(conn.servers))
