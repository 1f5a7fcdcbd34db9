"""The only module that talks to brokers. Each public function runs one operation on the
process's broker event loop, over a kept connection (a fresh one for Test connection), within a
time limit, and turns every failure into BrokerError with a readable message that never
contains a secret."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import ssl
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from django.conf import settings
from nats.aio.client import Client, RawCredentials
from nats.js import JetStreamContext

from streams import stream_config

T = TypeVar("T")

CLIENT_NAME = "memphisadmin"  # never with "::": Memphis would take us for its own SDK
RETRYABLE_ERR_CODES = {10008}  # JetStream temporarily unavailable


class BrokerError(Exception):
    """A broker operation failed. `message` is safe to show and store."""

    def __init__(
        self, message: str, *, err_code: int | None = None, retryable: bool = False,
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.err_code = err_code
        self.retryable = retryable
        self.field = field


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


async def _run(
    conn: Connection,
    operation: Callable[[Client, JetStreamContext], Awaitable[T]],
    timeout: float,
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
        raise _translate(exc) from None


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
            error = _translate(cause)
            if not error.retryable:  # wrong credentials or TLS: other servers will say the same
                raise error from None
            failures.append(f"{_host_port(url)}: {error.message}")
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


def _host_port(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return f"{parts.hostname}:{parts.port or 4222}"


def _translate(exc: BaseException) -> BrokerError:
    """Map nats-py and OS errors to a readable BrokerError."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, nats.js.errors.ServiceUnavailableError | nats.errors.NoRespondersError):
        return BrokerError("JetStream is not enabled on this server or for this account")
    if isinstance(exc, nats.js.errors.APIError):
        description = exc.description or "JetStream API error"
        return BrokerError(
            f"{description} (error {exc.err_code})" if exc.err_code else description,
            err_code=exc.err_code,
            retryable=exc.err_code in RETRYABLE_ERR_CODES,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return BrokerError(f"TLS error: certificate verify failed: {exc.verify_message}",
                           field="tls_ca")
    if isinstance(exc, ssl.SSLError):
        return BrokerError(f"TLS error: {exc.reason or exc}", field="tls_ca")
    text = str(exc)
    if "authorization violation" in text.lower() or isinstance(
        exc, nats.errors.AuthorizationError
    ):
        return BrokerError("authorization violation: the server rejected the credentials",
                           field="auth_method")
    if isinstance(exc, nats.errors.TimeoutError | asyncio.TimeoutError | TimeoutError):
        return BrokerError("the server did not answer in time", retryable=True)
    if isinstance(exc, ConnectionRefusedError):
        return BrokerError("connection refused", retryable=True)
    if isinstance(exc, OSError):
        return BrokerError(exc.strerror or text or type(exc).__name__, retryable=True)
    if isinstance(exc, nats.errors.Error):
        return BrokerError(text.removeprefix("nats: ").strip("'") or type(exc).__name__,
                           retryable=isinstance(exc, nats.errors.ConnectionClosedError))
    return BrokerError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


# Operations ------------------------------------------------------------------------------------


def check_connection(conn: Connection, timeout: float) -> dict[str, Any]:
    """Who the server is, what JetStream offers this account, and the round-trip time."""

    async def report(nc: Client, js: JetStreamContext) -> dict[str, Any]:
        try:
            return await _server_report(nc, js)
        except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError):
            if conn.js_domain or conn.js_api_prefix:  # the usual cause: a mistyped domain
                raise BrokerError(f"no JetStream answers at {_api_prefix(conn)}: check the "
                                  "JetStream domain or API prefix", field="js_domain") from None
            raise

    return run(conn, report, timeout, fresh=True)  # the point is to connect


async def _server_report(nc: Client, js: JetStreamContext) -> dict[str, Any]:
    info = nc._server_info  # nats-py keeps the server's INFO only here
    started = time.perf_counter()
    await nc.flush(timeout=5)
    rtt_ms = (time.perf_counter() - started) * 1000
    report: dict[str, Any] = {
        "server_name": info.get("server_name", ""),
        "server_id": info.get("server_id", ""),
        "version": info.get("version", ""),
        "jetstream": bool(info.get("jetstream")),
        "cluster": info.get("cluster", ""),
        "cluster_size": _cluster_size(info),
        "connected_url": _host_port(nc.connected_url.geturl()) if nc.connected_url else "",
        "tls": bool(info.get("tls_required")),
        "rtt_ms": round(rtt_ms, 2),
    }
    if not report["jetstream"]:
        raise BrokerError(
            f"connected to {report['server_name'] or 'the server'} "
            f"(nats-server {report['version']}), but JetStream is not enabled"
        )
    account = await js.account_info()
    report["domain"] = account.domain or ""
    report["account"] = {
        "memory": account.memory,
        "storage": account.storage,
        "streams": account.streams,
        "consumers": account.consumers,
        "limits": {
            "max_memory": account.limits.max_memory,
            "max_storage": account.limits.max_storage,
            "max_streams": account.limits.max_streams,
            "max_consumers": account.limits.max_consumers,
        },
    }
    return report


# Streams ---------------------------------------------------------------------------------------
# Raw JetStream API requests with JSON dicts: nats-py's StreamConfig drops fields it does not
# know, and an update must send back every field, known or not.

LIST_PAGE = 256  # the server's STREAM.LIST page size
API_TIMEOUT = 5.0  # one JetStream API request
STREAM_TIMEOUT = 30.0  # a whole stream job, connection included
# The form field each JetStream error belongs to.
ERROR_FIELDS = {10058: "name", 10065: "subjects", 10074: "num_replicas", 10005: "num_replicas"}
NOT_FOUND = 10059


def _api_prefix(conn: Connection) -> str:
    if conn.js_domain:
        return f"$JS.{conn.js_domain}.API"
    return conn.js_api_prefix or "$JS.API"


async def _api(
    nc: Client, conn: Connection, subject: str, payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One JetStream API request; an error answer becomes a BrokerError on its form field."""
    body = json.dumps(payload).encode() if payload is not None else b""
    msg = await nc.request(f"{_api_prefix(conn)}.{subject}", body, timeout=API_TIMEOUT)
    answer: dict[str, Any] = json.loads(msg.data or b"{}")
    error = answer.get("error")
    if error:
        code = error.get("err_code") or error.get("code")
        description = error.get("description") or "JetStream API error"
        raise BrokerError(f"{description} (error {code})", err_code=code,
                          retryable=code in RETRYABLE_ERR_CODES or error.get("code") == 503,
                          field=ERROR_FIELDS.get(code, ""))
    return answer


def _server_facts(nc: Client) -> dict[str, Any]:
    """What every stream job reports about the server, so version gates stay current."""
    info = nc._server_info  # nats-py keeps the server's INFO only here
    return {
        "server_version": info.get("version", ""),
        "cluster": info.get("cluster", ""),
        "cluster_size": _cluster_size(info),
    }


def _cluster_size(info: dict[str, Any]) -> int:
    """Servers gossip the client URLs of every cluster member, their own included."""
    return len(info.get("connect_urls") or []) if info.get("cluster") else 1


def _stream_op(
    conn: Connection, operation: Callable[[Client], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    async def wrapped(nc: Client, js: JetStreamContext) -> dict[str, Any]:
        return {**await operation(nc), **_server_facts(nc)}

    return run(conn, wrapped, STREAM_TIMEOUT + conn.connect_timeout * len(conn.servers))


async def _info(nc: Client, conn: Connection, name: str, **request: Any) -> dict[str, Any]:
    answer = await _api(nc, conn, f"STREAM.INFO.{name}", request or None)
    answer.pop("type", None)
    return answer


async def _info_or_none(nc: Client, conn: Connection, name: str) -> dict[str, Any] | None:
    try:
        return await _info(nc, conn, name)
    except BrokerError as error:
        if error.err_code == NOT_FOUND:
            return None
        raise


def list_streams(conn: Connection) -> dict[str, Any]:
    """Every stream, however many: STREAM.LIST pages of 256 until `total`. After the first
    page the rest are requested at once, which is what makes a long listing quick."""

    async def operation(nc: Client) -> dict[str, Any]:
        first = await _api(nc, conn, "STREAM.LIST", {"offset": 0})
        pages = [first] + list(await asyncio.gather(*(
            _api(nc, conn, "STREAM.LIST", {"offset": offset})
            for offset in range(LIST_PAGE, first.get("total", 0), LIST_PAGE)
        )))
        streams: dict[str, dict[str, Any]] = {}
        missing: set[str] = set()
        offline: dict[str, str] = {}
        for page in pages:
            for info in page.get("streams") or []:
                streams[info["config"]["name"]] = info
            missing.update(page.get("missing") or [])
            offline.update(page.get("offline") or {})
        # A cluster lists a stream it could not reach both here (config only) and as missing.
        return {"streams": list(streams.values()), "total": first.get("total", 0),
                "missing": sorted(missing), "offline": offline}

    return _stream_op(conn, operation)


def stream_info(conn: Connection, name: str) -> dict[str, Any]:
    """The stream's config, state (with per-subject counts, capped) and cluster status."""

    async def operation(nc: Client) -> dict[str, Any]:
        return {"info": await _info(nc, conn, name, subjects_filter=">")}

    return _stream_op(conn, operation)


def create_stream(conn: Connection, config: dict[str, Any]) -> dict[str, Any]:
    """Create the stream, unless it exists with this config already (the server answers an
    identical create as if it had made the stream: `created` says which it was; a different
    config is the server's error 10058). A create that timed out may have been applied: then
    the stream's info tells."""

    async def operation(nc: Client) -> dict[str, Any]:
        name = config["name"]
        existing = await _info_or_none(nc, conn, name)
        if existing is not None and not _differs(existing["config"], config):
            return {"info": existing, "created": False}
        try:
            answer = await _api(nc, conn, f"STREAM.CREATE.{name}", config)
        except nats.errors.TimeoutError:
            info = await _info_or_none(nc, conn, name)
            if info is None or _differs(info["config"], config):
                raise BrokerError("the server did not confirm the create in time",
                                  retryable=True) from None
            answer = info
        answer.pop("type", None)
        answer.pop("did_create", None)
        return {"info": answer, "created": True}

    return _stream_op(conn, operation)


def update_stream(conn: Connection, name: str, changes: dict[str, list[Any]]) -> dict[str, Any]:
    """Read-modify-write: read the live config, replace only the changed keys, send it back.
    Fails when someone else changed one of those keys since the form was read."""
    async def operation(nc: Client) -> dict[str, Any]:
        current = (await _info(nc, conn, name))["config"]
        desired = stream_config.apply(current, changes)
        if not stream_config.diff(current, desired, list(changes)):
            return {"before": current, "info": await _info(nc, conn, name), "applied": False}
        changed_meanwhile = stream_config.conflicts(current, changes)
        if changed_meanwhile:
            labels = ", ".join(stream_config.label_of_key(key) for key in changed_meanwhile)
            raise BrokerError(f"changed on the server since the form was read: {labels}; "
                              "reload and edit again", field=changed_meanwhile[0])
        try:
            answer = await _api(nc, conn, f"STREAM.UPDATE.{name}", desired)
        except nats.errors.TimeoutError:
            answer = await _info(nc, conn, name)
            if stream_config.diff(answer["config"], desired, list(changes)):
                raise BrokerError("the server did not confirm the update in time",
                                  retryable=True) from None
        answer.pop("type", None)
        return {"before": current, "info": answer, "applied": True}

    return _stream_op(conn, operation)


def delete_stream(conn: Connection, name: str) -> dict[str, Any]:
    """Delete the stream, refusing when it is sealed or denies purging. A stream already gone
    (a redelivered job whose first run deleted it) counts as deleted."""

    async def operation(nc: Client) -> dict[str, Any]:
        info = await _info_or_none(nc, conn, name)
        if info is None:
            return {"before": None, "deleted": False}
        _refuse_destruction(info["config"], "deleted")
        try:
            await _api(nc, conn, f"STREAM.DELETE.{name}")
        except nats.errors.TimeoutError:
            if await _info_or_none(nc, conn, name) is not None:
                raise BrokerError("the server did not confirm the delete in time",
                                  retryable=True) from None
        return {"before": info["config"], "state": info.get("state"), "deleted": True}

    return _stream_op(conn, operation)


def purge_stream(
    conn: Connection, name: str, *, subject: str = "", keep: int = 0, seq: int = 0,
) -> dict[str, Any]:
    """Purge all, one subject (wildcards allowed), keep the last N, or everything below a
    sequence. Zeros are left out of the request (they would mean something else)."""

    async def operation(nc: Client) -> dict[str, Any]:
        info = await _info(nc, conn, name)
        _refuse_destruction(info["config"], "purged")
        request: dict[str, Any] = {}
        if subject:
            request["filter"] = subject
        if keep:
            request["keep"] = keep
        if seq:
            request["seq"] = seq
        answer = await _api(nc, conn, f"STREAM.PURGE.{name}", request or None)
        after = await _info(nc, conn, name)
        return {"purged": answer.get("purged", 0), "request": request,
                "state_before": info.get("state"), "info": after}

    return _stream_op(conn, operation)


def _refuse_destruction(config: dict[str, Any], verb: str) -> None:
    refusal = stream_config.destruction_refusal(config, verb)
    if refusal:
        raise BrokerError(refusal, err_code=10109 if config.get("sealed") else 10110)


def _differs(live: dict[str, Any], asked: dict[str, Any]) -> bool:
    """Whether a live config lacks something the request asked for."""
    return bool(stream_config.diff(live, asked, [key for key in asked if key != "name"]))
