"""The worker process's broker event loop, on a thread of its own, and the connections it keeps
between jobs (_Keeper): run() and run_streaming() hand an operation to that loop, bounded in
time, and every failure comes back as a BrokerError. A forked process (a Celery prefork
worker) starts a loop of its own; nothing is made at import time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TypeVar

from django.conf import settings
from nats.aio.client import Client
from nats.js import JetStreamContext

from streams.broker.connection import Connection, connect
from streams.broker.errors import BrokerError, translate

T = TypeVar("T")


def run(
    conn: Connection,
    operation: Callable[[Client, JetStreamContext], Awaitable[T]],
    timeout: float,
    *,
    fresh: bool = False,
) -> T:
    """Run `operation` on a connection to `conn`, the whole thing bounded by `timeout` seconds
    and never more than JOB_BROKER_TIMEOUT: the process's kept connection (see _Keeper), or
    with `fresh` a new one closed afterwards."""
    timeout = min(timeout, settings.JOB_BROKER_TIMEOUT)
    keeper = _keeper()
    future = asyncio.run_coroutine_threadsafe(
        _run(conn, operation, timeout, None if fresh else keeper), keeper.loop)
    try:
        return future.result(timeout + 5)
    except concurrent.futures.TimeoutError:  # the loop itself is stuck: give up on it
        future.cancel()
        raise BrokerError(f"timed out after {timeout:g} s", retryable=True) from None


def run_streaming(
    conn: Connection,
    operation: Callable[[Client, JetStreamContext, Callable[[T], None]], Awaitable[None]],
    idle: float,
    window: float = 0.2,
) -> Iterator[list[T]]:
    """Run `operation` like run(), on the kept connection, and yield what it emits (through
    the callable it is given) in batches, one every `window` seconds: a caller recording each
    batch commits a few times a second, not once an item, and the emitting loop never waits
    for it. Bounded not in total but by `idle` seconds (never more than JOB_BROKER_TIMEOUT)
    without anything emitted: a long run of many quick requests goes on while it progresses."""
    idle = min(idle, settings.JOB_BROKER_TIMEOUT)
    keeper = _keeper()
    emitted: queue.SimpleQueue[T] = queue.SimpleQueue()
    ended = threading.Event()

    async def emitting(nc: Client, js: JetStreamContext) -> None:
        await operation(nc, js, emitted.put)

    future = asyncio.run_coroutine_threadsafe(_run(conn, emitting, None, keeper), keeper.loop)
    future.add_done_callback(lambda _: ended.set())  # after all it emitted
    last_emitted = time.monotonic()
    try:
        while True:
            # Woken early only by the end: waking for each item would take the interpreter
            # from the loop's thread once an item.
            finished = ended.wait(window)
            batch = []
            while not emitted.empty():
                batch.append(emitted.get_nowait())
            if batch:
                last_emitted = time.monotonic()
                yield batch
            if finished:
                future.result()  # the operation's own failure, if any
                return
            if time.monotonic() - last_emitted > idle:
                raise BrokerError(f"no answer for {idle:g} s", retryable=True)
    finally:
        future.cancel()  # stopped early (the idle bound, or the caller failed): stop the rest


async def _run(
    conn: Connection,
    operation: Callable[[Client, JetStreamContext], Awaitable[T]],
    timeout: float | None,
    keeper: _Keeper | None,
) -> T:
    try:
        async with asyncio.timeout(timeout):
            async with keeper.client(conn) if keeper else _fresh_client(conn) as nc:
                js = nc.jetstream(domain=conn.js_domain or None, prefix=conn.js_api_prefix or
                                  "$JS.API")
                return await operation(nc, js)
    except TimeoutError:
        raise BrokerError(f"timed out after {timeout:g} s", retryable=True) from None
    except BrokerError:
        raise
    except Exception as exc:
        raise translate(exc) from None


@asynccontextmanager
async def _fresh_client(conn: Connection) -> AsyncIterator[Client]:
    nc = await connect(conn)
    try:
        yield nc
    finally:
        await nc.close()


KEEP_IDLE = 60.0  # seconds a kept connection may stay unused


class _Keeper:
    """The worker process's event loop, on a thread of its own, and the connections it keeps
    between jobs: a stream job then costs its requests, not also a connect (with its inbox
    subscription) and a close, which take longer than the request itself. Running all the time,
    the loop answers the servers' pings; a connection is checked with a ping before each use
    and closed once unused for `idle` seconds. Connections are keyed by everything in
    Connection, secrets included, so an edited profile gets a new one."""

    def __init__(self, idle: float = KEEP_IDLE) -> None:
        self.idle = idle
        self.loop = asyncio.new_event_loop()
        self.clients: dict[Connection, Client] = {}
        self.last_used: dict[Connection, float] = {}
        self.in_use: Counter[Connection] = Counter()
        self.locks: defaultdict[Connection, asyncio.Lock] = defaultdict(asyncio.Lock)
        threading.Thread(target=self.loop.run_forever, name="memphisadmin-broker",
                         daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._close_idle(), self.loop)

    @asynccontextmanager
    async def client(self, conn: Connection) -> AsyncIterator[Client]:
        async with self.locks[conn]:  # one connect per key, however many jobs ask at once
            nc = self.clients.get(conn)
            if nc is not None and not await _answers(nc, conn):
                await self._forget(conn)
                nc = None
            if nc is None:
                nc = self.clients[conn] = await connect(conn)
            self.in_use[conn] += 1
        try:
            yield nc
        finally:
            self.in_use[conn] -= 1
            if self.clients.get(conn) is nc:  # not replaced meanwhile
                self.last_used[conn] = time.monotonic()

    async def close(self) -> None:
        for conn in list(self.clients):
            await self._forget(conn)

    async def _forget(self, conn: Connection) -> None:
        nc = self.clients.pop(conn, None)
        self.last_used.pop(conn, None)
        if nc is not None:
            with contextlib.suppress(Exception):  # it may be dead: do not wait on it for long
                await asyncio.wait_for(nc.close(), 2.0)

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(self.idle / 4)
            cutoff = time.monotonic() - self.idle
            for conn, used in list(self.last_used.items()):
                if used < cutoff and not self.in_use[conn]:
                    await self._forget(conn)
                    if not self.locks[conn].locked():  # nobody waits: drop its bookkeeping too
                        self.locks.pop(conn)
                        self.in_use.pop(conn, None)


_keeper_instance: _Keeper | None = None
_keeper_lock = threading.Lock()


def _keeper() -> _Keeper:
    global _keeper_instance
    with _keeper_lock:
        if _keeper_instance is None:
            _keeper_instance = _Keeper()
        return _keeper_instance


def close_kept_connections() -> None:
    """Close the connections this process keeps (a worker process shutting down)."""
    if _keeper_instance is not None:
        asyncio.run_coroutine_threadsafe(_keeper_instance.close(), _keeper_instance.loop).result(10)


def _forget_keeper() -> None:
    """A forked child (a Celery prefork worker) has no loop thread: it starts its own."""
    global _keeper_instance, _keeper_lock
    _keeper_instance, _keeper_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_keeper)


async def _answers(nc: Client, conn: Connection) -> bool:
    """Whether a kept connection is still open and the server still answers a ping."""
    if not nc.is_connected:
        return False
    try:
        await nc.flush(timeout=min(conn.connect_timeout, 2.0))
    except Exception:
        return False
    return True
