"""Consumers on the broker: the complete list of a stream's consumers, past the API's pages."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.aio.client import Client

from streams.broker.connection import Connection, request

LIST_PAGE = 256  # the server's CONSUMER.LIST page size


async def list_consumers(nc: Client, conn: Connection, stream: str) -> dict[str, Any]:
    """Every consumer of the stream: CONSUMER.LIST pages until `total`, the rest asked at
    once after the first; `missing` names those no replica answered for (a cluster)."""
    subject = f"CONSUMER.LIST.{stream}"
    first = await request(nc, conn, subject, {"offset": 0})
    pages = [first] + list(await asyncio.gather(*(
        request(nc, conn, subject, {"offset": offset})
        for offset in range(LIST_PAGE, first.get("total", 0), LIST_PAGE)
    )))
    consumers: dict[str, dict[str, Any]] = {}
    missing: set[str] = set()
    for page in pages:
        for info in page.get("consumers") or []:
            consumers[info["name"]] = info
        missing.update(page.get("missing") or [])
    return {"consumers": list(consumers.values()), "missing": sorted(missing - consumers.keys())}
