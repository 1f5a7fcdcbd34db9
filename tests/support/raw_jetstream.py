"""Raw JetStream API requests with straight nats-py, not our broker layer: to arrange server
state before a test and inspect it after, independently of the code under test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import nats

T = TypeVar("T")


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run on a private loop in another thread: the caller's thread may have a loop running
    already (Playwright's sync API owns one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def api(url: str, subject: str, payload: dict[str, Any] | None = None,
        **options: Any) -> dict[str, Any]:
    """One raw `$JS.API.<subject>` request; `options` go to nats.connect (token=…)."""

    async def go() -> dict[str, Any]:
        nc = await nats.connect(url, allow_reconnect=False, **options)
        try:
            body = json.dumps(payload).encode() if payload is not None else b""
            msg = await nc.request(f"$JS.API.{subject}", body, timeout=10)
            return json.loads(msg.data)
        finally:
            await nc.close()

    return in_thread(go())


def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    async def go() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        js = nc.jetstream()
        for subject, data in messages:
            await js.publish(subject, data)
        await nc.close()

    in_thread(go())


def create_raw(url: str, config: dict[str, Any]) -> dict[str, Any]:
    answer = api(url, f"STREAM.CREATE.{config['name']}", config)
    assert "error" not in answer, answer
    return answer


def live_config(url: str, name: str) -> dict[str, Any]:
    answer = api(url, f"STREAM.INFO.{name}")
    assert "error" not in answer, answer
    return answer["config"]
