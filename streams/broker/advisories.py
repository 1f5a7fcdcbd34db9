"""JetStream's API audit advisories, as the listener (manage.py watch_advisories) follows them:
which ones are stream changes, and a connection per watched profile that reads them live or,
with the capture stream, through a durable consumer so that none is lost while it is down.

The server publishes one api_audit advisory on `$JS.EVENT.ADVISORY.API` for every JetStream API
answer it sends (jetstream_api.go, sendJetStreamAPIAuditAdvisory), errors included, on 2.9 and
later alike: the client, the request subject, the request (left out of a cluster's answers to
creates, updates and deletes) and the response. The client is described in full (user, host,
client name…) from 2.11 on; 2.9 and 2.10 name only its account. The stream action advisories
(`$JS.EVENT.ADVISORY.STREAM.*`) name no client at all, so they are not read.

Recording is someone else's: `watch` runs the caller's functions (database work) one at a time
on a thread of their own and never lets their failures, or a malformed advisory, stop it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from streams.broker.connection import CLIENT_NAME, Connection, connect, host_port
from streams.broker.errors import NOT_FOUND, translate
from streams.stream_config import CAPTURE_STREAM

log = logging.getLogger(__name__)

API_AUDIT_SUBJECT = "$JS.EVENT.ADVISORY.API"
API_AUDIT_TYPE = "io.nats.jetstream.advisory.v1.api_audit"
ACTIONS = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted"}
# What an entry keeps of the advisory's client: never its JWT (2.9 and 2.10 send it).
AUTHOR_FIELDS = {"user": "user", "acc": "account", "host": "host", "name": "client_name",
                 "name_tag": "name_tag", "lang": "lang", "ver": "version", "id": "client_id",
                 "server": "server", "cluster": "cluster"}

DURABLE = "memphisadmin-listener"  # one consumer shared by every listener of the deployment
BATCH = 64
WAIT = 1.0  # seconds a read waits for advisories before checking the connection
PING_EVERY = 15.0  # seconds of quiet before the server is asked whether it is still there
NAK_DELAY = 5.0  # seconds before an advisory that could not be recorded comes again
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class StreamChange:
    """A stream created, updated or deleted through the JetStream API: one api_audit advisory
    whose answer was a success."""

    id: str  # the advisory's own, unique
    at: datetime
    action: str  # created, updated or deleted
    stream: str
    author: dict[str, Any]  # AUTHOR_FIELDS, as far as the server said
    request: Any  # what the client sent (JSON), None when the advisory leaves it out
    info: dict[str, Any] | None  # the stream as the server answered a create or an update
    subject: str

    @property
    def identified(self) -> bool:
        """Whether the server described the client (2.11+) or only its account (2.9, 2.10)."""
        return "host" in self.author or "client_id" in self.author


def parse(data: bytes) -> StreamChange | None:
    """The stream change an advisory reports; None for any other advisory, a failed request,
    one made by this dashboard (its connections carry CLIENT_NAME), or a malformed message."""
    advisory = _json(data)
    if not isinstance(advisory, dict) or advisory.get("type") != API_AUDIT_TYPE:
        return None
    subject = advisory.get("subject")
    tokens = subject.split(".") if isinstance(subject, str) else []
    # $JS.API.STREAM.<OP>.<name>, or behind a domain's or an import's prefix.
    if len(tokens) < 4 or tokens[-4:-2] != ["API", "STREAM"] or tokens[-2] not in ACTIONS:
        return None
    client = advisory.get("client") if isinstance(advisory.get("client"), dict) else {}
    if client.get("name") == CLIENT_NAME:
        return None
    response = _json(advisory.get("response"))
    advisory_id, at = advisory.get("id"), _time(advisory.get("timestamp"))
    if (not isinstance(response, dict) or response.get("error") or not isinstance(
            advisory_id, str) or not advisory_id or at is None):
        return None
    action = ACTIONS[tokens[-2]]
    info = None
    if action == "deleted":
        if response.get("success") is not True:
            return None
    elif isinstance(response.get("config"), dict):
        info = {key: value for key, value in response.items()
                if key not in {"type", "did_create"}}
    return StreamChange(
        id=advisory_id[:64], at=at, action=action, stream=tokens[-1],
        author={ours: client[theirs] for theirs, ours in AUTHOR_FIELDS.items()
                if client.get(theirs) not in (None, "")},
        request=_json(advisory.get("request")), info=info, subject=subject,
    )


def _json(value: Any) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value)  # Go's nanoseconds are cut to microseconds
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Watch:
    """One profile to follow: its id (what the recorder is told) and name (for the log), how
    to connect, and whether to read the capture stream rather than the live advisories."""

    key: int
    name: str
    conn: Connection
    capture: bool


Targets = Callable[[], list[Watch]]
Recorder = Callable[[int, StreamChange], object]
LossRecorder = Callable[[int, int, int], object]  # profile key, first and last sequence lost


def watch(targets: Targets, record: Recorder, record_lost: LossRecorder, reread: float) -> None:
    """Follow every profile `targets` names, asking it again every `reread` seconds, until
    SIGINT or SIGTERM. `targets`, `record` and `record_lost` (advisories the capture stream
    dropped unread) run on one thread of their own, one at a time."""
    with concurrent.futures.ThreadPoolExecutor(1, "memphisadmin-recorder") as recorder:
        asyncio.run(_Listener(targets, record, record_lost, reread, recorder).run())


class _Listener:
    def __init__(self, targets: Targets, record: Recorder, record_lost: LossRecorder,
                 reread: float, recorder: concurrent.futures.Executor) -> None:
        self.targets, self.record, self.record_lost = targets, record, record_lost
        self.reread, self.recorder = reread, recorder
        self.following: dict[int, tuple[Watch, asyncio.Task[None]]] = {}

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("advisory listener started")
        try:
            while not stop.is_set():
                await self._follow_targets()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.reread)
        finally:
            for _, task in self.following.values():
                task.cancel()
            await asyncio.gather(*(task for _, task in self.following.values()),
                                 return_exceptions=True)
            log.info("advisory listener stopped")

    async def _follow_targets(self) -> None:
        """Start following new profiles, stop following removed ones, and start again with
        profiles whose connection or capture setting changed."""
        try:
            wanted = {target.key: target for target in await self._in_recorder(self.targets)}
        except Exception:
            log.exception("could not read the profiles to follow; trying again later")
            return
        for key, (target, task) in list(self.following.items()):
            if wanted.get(key) != target or task.done():
                task.cancel()
                del self.following[key]
        for key, target in wanted.items():
            if key not in self.following:
                self.following[key] = (target, asyncio.create_task(self._keep_following(target)))

    async def _in_recorder(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.recorder, function, *args)

    async def _keep_following(self, target: Watch) -> None:
        """Connect, read, and connect again whenever the connection is lost, waiting longer
        after each failed attempt (up to MAX_BACKOFF)."""
        where = f"profile {target.name!r} ({', '.join(map(host_port, target.conn.servers))})"
        delay = 1.0
        while True:
            try:
                nc = await asyncio.wait_for(
                    connect(target.conn, lambda exc: log.warning(
                        "%s: %s", where, translate(exc).message)),
                    2 * target.conn.connect_timeout * max(len(target.conn.servers), 1) + 5)
            except Exception as exc:
                log.warning("%s: %s; trying again in %g s", where, translate(exc).message,
                            delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, MAX_BACKOFF)
                continue
            delay = 1.0
            try:
                await self._read(target, nc, where)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: %s; connecting again", where, translate(exc).message)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 2.0)
            await asyncio.sleep(1.0)

    async def _read(self, target: Watch, nc: Client, where: str) -> None:
        js = nc.jetstream(domain=target.conn.js_domain or None,
                          prefix=target.conn.js_api_prefix or "$JS.API")
        if target.capture:
            try:
                await self._read_capture(target, nc, js, where)
                return
            except nats.js.errors.NotFoundError:
                log.warning("%s: the capture stream %s is missing; following the live "
                            "advisories until it is there", where, CAPTURE_STREAM)
        await self._read_live(target, nc, js, where)

    async def _read_capture(self, target: Watch, nc: Client, js: JetStreamContext,
                            where: str) -> None:
        """Read the capture stream through the durable consumer: an advisory is acknowledged
        once it is recorded (committed), so one that was not is delivered again, also to a
        listener started later."""
        consumer = await js.add_consumer(CAPTURE_STREAM, ConsumerConfig(
            durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL, ack_wait=30, max_ack_pending=1000))
        await self._report_dropped(target, js, consumer.ack_floor.stream_seq, where)
        reader = await js.pull_subscribe_bind(DURABLE, CAPTURE_STREAM)
        log.info("%s: following the capture stream %s", where, CAPTURE_STREAM)
        quiet_since = time.monotonic()
        while True:
            try:
                messages = await reader.fetch(BATCH, timeout=WAIT)
            except nats.errors.TimeoutError:
                quiet_since = await self._check(nc, quiet_since)
                continue
            for msg in messages:
                await self._take(target, msg, where, acknowledge=True)
            quiet_since = time.monotonic()

    async def _report_dropped(self, target: Watch, js: JetStreamContext, acknowledged: int,
                              where: str) -> None:
        """Advisories the capture stream dropped (its size or age limit: a busy account, a
        listener down for long) before they were acknowledged: those between the consumer's
        ack floor and the stream's first message. The server moves the floor past them only
        with the next delivery, so this is seen here, as the listener (re)connects."""
        first = (await js.stream_info(CAPTURE_STREAM)).state.first_seq
        if first <= acknowledged + 1:
            return
        log.warning("%s: %d advisories were dropped from the capture stream before they were "
                    "read", where, first - 1 - acknowledged)
        await self._in_recorder(self.record_lost, target.key, acknowledged + 1, first - 1)

    async def _read_live(self, target: Watch, nc: Client, js: JetStreamContext,
                         where: str) -> None:
        """Read the advisories as they are published: whatever comes while the listener is
        not connected is lost. With the capture stream wanted but missing, look for it now
        and then, and read it as soon as it is there (it holds what came meanwhile)."""
        subscription = await nc.subscribe(API_AUDIT_SUBJECT)
        await nc.flush(timeout=5)  # the server knows of the subscription from here on
        log.info("%s: following the live advisories", where)
        quiet_since = looked_at = time.monotonic()
        while True:
            try:
                msg = await subscription.next_msg(timeout=WAIT)
            except nats.errors.TimeoutError:
                quiet_since = await self._check(nc, quiet_since)
                if target.capture and time.monotonic() - looked_at > self.reread:
                    looked_at = time.monotonic()
                    if await _stream_exists(js, CAPTURE_STREAM):
                        await subscription.unsubscribe()
                        await self._read_capture(target, nc, js, where)
                continue
            await self._take(target, msg, where, acknowledge=False)
            quiet_since = time.monotonic()

    async def _take(self, target: Watch, msg: Msg, where: str, *, acknowledge: bool) -> None:
        """Record one advisory if it is a stream change; a malformed one is skipped. A change
        that could not be recorded is delivered again later when it came from the capture
        stream, and lost (with a warning) otherwise."""
        try:
            change = parse(msg.data)
        except Exception:  # a bug, not the message: never let one advisory stop the rest
            log.exception("%s: an advisory could not be read; skipped", where)
            change = None
        if change is not None:
            try:
                await self._in_recorder(self.record, target.key, change)
            except Exception:
                log.exception("%s: advisory %s (%s %s) could not be recorded%s", where,
                              change.id, change.stream, change.action,
                              "; it comes again" if acknowledge else "")
                if acknowledge:
                    await msg.nak(delay=NAK_DELAY)
                return
        if acknowledge:
            await msg.ack()

    @staticmethod
    async def _check(nc: Client, quiet_since: float) -> float:
        """After a quiet spell, make sure the server is still there (a lost connection is
        otherwise only noticed minutes later); raise if it is not."""
        if nc.is_closed or not nc.is_connected:
            raise nats.errors.ConnectionClosedError
        if time.monotonic() - quiet_since < PING_EVERY:
            return quiet_since
        await nc.flush(timeout=5)
        return time.monotonic()


async def _stream_exists(js: JetStreamContext, name: str) -> bool:
    try:
        await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        return False
    except nats.js.errors.APIError as error:
        if error.err_code == NOT_FOUND:
            return False
        raise
    return True
