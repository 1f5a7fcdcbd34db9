"""Connections to brokers: what a profile connects with, the worker process's event loop and
the connections it keeps between jobs, and one JetStream API request. Every call is bounded in
time and every failure becomes a BrokerError."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import queue
import ssl
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats.errors
from django.conf import settings
from nats.aio.client import Client, RawCredentials
from nats.js import JetStreamContext

from streams.broker.errors import ERROR_FIELDS, RETRYABLE_ERR_CODES, BrokerError, translate

T = TypeVar("T")

CLIENT_NAME = "memphisadmin"  # never with "::": Memphis would take us for its own SDK
API_TIMEOUT = 5.0  # one JetStream API request


@dataclass(frozen=True)
class Connection:
    """Everything needed to connect. Secrets are excluded from repr so they never reach logs."""

    servers: tuple[str, ...]  # a tuple: connections are kept by Connection (see _Keeper)
    connect_timeout: float = 2.0
    js_domain: str = ""
    js_api_prefix: str = ""
    user: str = ""
    password: str | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)
    nkey_seed: str = field(default="", repr=False)
    creds: str = field(default="", repr=False)
    tls_ca: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = field(default="", repr=False)
    tls_server_name: str = ""

    @classmethod
    def from_profile(cls, profile: Any) -> Connection:
        method = profile.auth_method
        kwargs: dict[str, Any] = {}
        if method in {"user_password", "memphis_password"}:
            # A user without a password must still send password="" or nats-py drops the user.
            kwargs.update(user=profile.username, password=profile.password or "")
        elif method == "token":
            kwargs["token"] = profile.token
        elif method == "memphis_token":
            # What `nats --user=<APP_USER>::<CONNECTION_TOKEN>` sends: one token.
            kwargs["token"] = f"{profile.username}::{profile.token}"
        elif method == "nkey":
            kwargs["nkey_seed"] = profile.nkey_seed
        elif method == "creds":
            kwargs["creds"] = profile.creds
        return cls(
            servers=tuple(profile.server_list),
            connect_timeout=profile.connect_timeout,
            js_domain=profile.js_domain,
            js_api_prefix=profile.js_api_prefix,
            tls_ca=profile.tls_ca,
            tls_client_cert=profile.tls_client_cert,
            tls_client_key=profile.tls_client_key,
            tls_server_name=profile.tls_server_name,
            **kwargs,
        )

    @property
    def wants_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_client_cert) or any(
            url.startswith("tls://") for url in self.servers
        )


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
    the callable it is given) in batches: what came within `window` seconds of a batch's first
    item, so a caller recording each batch commits a few times a second, not once an item.
    Bounded not in total but by `idle` seconds (never more than JOB_BROKER_TIMEOUT) without
    anything emitted: a long run of many quick requests goes on while it makes progress."""
    idle = min(idle, settings.JOB_BROKER_TIMEOUT)
    keeper = _keeper()
    emitted: queue.SimpleQueue[Any] = queue.SimpleQueue()
    ended = object()

    async def emitting(nc: Client, js: JetStreamContext) -> None:
        await operation(nc, js, emitted.put)

    future = asyncio.run_coroutine_threadsafe(_run(conn, emitting, None, keeper), keeper.loop)
    future.add_done_callback(lambda _: emitted.put(ended))  # after all it emitted
    try:
        while True:
            try:
                batch = [emitted.get(timeout=idle)]
            except queue.Empty:
                raise BrokerError(f"no answer for {idle:g} s", retryable=True) from None
            closes = time.monotonic() + window
            while batch[-1] is not ended and (wait := closes - time.monotonic()) > 0:
                try:
                    batch.append(emitted.get(timeout=wait))
                except queue.Empty:
                    break
            if items := [item for item in batch if item is not ended]:
                yield items
            if batch[-1] is ended:
                future.result()  # the operation's own failure, if any
                return
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
    nc = await _connect(conn)
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
                nc = self.clients[conn] = await _connect(conn)
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


async def _connect(conn: Connection) -> Client:
    """Try each server in order, each within the connect timeout. nats-py would otherwise keep
    retrying unreachable hosts for minutes."""
    failures: list[str] = []
    for url in conn.servers:
        nc = Client()
        errors: list[BaseException] = []
        try:
            await nc.connect(servers=[url], **_connect_options(conn, errors.append))
            return nc
        except Exception as exc:
            # NoServersError only says the pool ran dry; the reason is the last error seen.
            cause = errors[-1] if isinstance(exc, nats.errors.NoServersError) and errors else exc
            error = translate(cause)
            if not error.retryable:  # wrong credentials or TLS: other servers will say the same
                raise error from None
            failures.append(f"{host_port(url)}: {error.message}")
    raise BrokerError("cannot reach " + "; ".join(failures), retryable=True)


def _connect_options(conn: Connection, on_error: Callable[[BaseException], None]) -> dict[str, Any]:
    async def error_cb(exc: BaseException) -> None:
        on_error(exc)  # reported through the raised error, not nats-py's printed tracebacks

    async def _ignore(*args: Any) -> None:
        pass

    options: dict[str, Any] = {
        "name": CLIENT_NAME,
        "connect_timeout": conn.connect_timeout,
        "allow_reconnect": False,
        # nats-py never gives up on a server with 0 here; 1 means two tries, back to back.
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0,
        "error_cb": error_cb,
        "disconnected_cb": _ignore,
        "closed_cb": _ignore,
    }
    if conn.password is not None:
        options.update(user=conn.user, password=conn.password)
    if conn.token:
        options["token"] = conn.token
    if conn.nkey_seed:
        options["nkeys_seed_str"] = conn.nkey_seed
    if conn.creds:
        options["user_credentials"] = RawCredentials(conn.creds)
    if conn.wants_tls:
        options["tls"] = _ssl_context(conn)
        if conn.tls_server_name:
            options["tls_hostname"] = conn.tls_server_name
    return options


def _ssl_context(conn: Connection) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=conn.tls_ca or None)
    if conn.tls_client_cert:
        # The ssl module loads client keys only from files: write 0600 files and remove them.
        with tempfile.TemporaryDirectory(prefix="memphisadmin-tls-") as folder:
            cert_path = os.path.join(folder, "cert.pem")
            key_path = os.path.join(folder, "key.pem")
            for path, text in ((cert_path, conn.tls_client_cert), (key_path, conn.tls_client_key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
            context.load_cert_chain(cert_path, key_path or None)
    return context


def host_port(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return f"{parts.hostname}:{parts.port or 4222}"


def api_prefix(conn: Connection) -> str:
    if conn.js_domain:
        return f"$JS.{conn.js_domain}.API"
    return conn.js_api_prefix or "$JS.API"


async def request(
    nc: Client, conn: Connection, subject: str, payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One JetStream API request; an error answer becomes a BrokerError on its form field."""
    body = json.dumps(payload).encode() if payload is not None else b""
    msg = await nc.request(f"{api_prefix(conn)}.{subject}", body, timeout=API_TIMEOUT)
    answer: dict[str, Any] = json.loads(msg.data or b"{}")
    error = answer.get("error")
    if error:
        code = error.get("err_code") or error.get("code")
        description = error.get("description") or "JetStream API error"
        raise BrokerError(f"{description} (error {code})", err_code=code,
                          retryable=code in RETRYABLE_ERR_CODES or error.get("code") == 503,
                          field=ERROR_FIELDS.get(code, ""))
    return answer


def cluster_size(info: dict[str, Any]) -> int:
    """Servers gossip the client URLs of every cluster member, their own included."""
    return len(info.get("connect_urls") or []) if info.get("cluster") else 1


