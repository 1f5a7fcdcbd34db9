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
import math
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from streams import naming, stream_json
from streams.broker.connection import CLIENT_NAME, Connection, connect, host_port
from streams.broker.errors import NOT_FOUND, translate
from streams.broker.streams import info_or_none
from streams.system_streams import CAPTURE_CONFIG, CAPTURE_STREAM

log = logging.getLogger(__name__)

API_AUDIT_SUBJECT = "$JS.EVENT.ADVISORY.API"
API_AUDIT_TYPE = "io.nats.jetstream.advisory.v1.api_audit"
ACTIONS = {"CREATE": "created", "UPDATE": "updated", "DELETE": "deleted"}
# What an entry keeps of the advisory's client: never its JWT (2.9 and 2.10 send it).
AUTHOR_FIELDS = {"user": "user", "acc": "account", "host": "host", "name": "client_name",
                 "name_tag": "name_tag", "lang": "lang", "ver": "version", "id": "client_id",
                 "server": "server", "cluster": "cluster"}
MAX_AUTHOR_FIELD = 256
MAX_SUBJECT = 512
REQUEST_KEPT = 16 << 10  # of a request, in its entry: a forged one may be as large as a message
# The largest config an entry takes from an advisory: the capture stream keeps no larger one.
CONFIG_KEPT = CAPTURE_CONFIG["max_msg_size"]

DURABLE = "memphisadmin-listener"  # one consumer shared by every listener of the deployment
BATCH = 64
WAIT = 1.0  # seconds a read waits for advisories before checking the connection
PING_EVERY = 15.0  # seconds of quiet before the server is asked whether it is still there
NAK_DELAY = 5.0  # seconds before an advisory that could not be recorded comes again
MAX_DELIVER = 5  # deliveries of one advisory before it is rejected as not recordable
REJECTED_ENTRY_EVERY = 3600.0  # seconds between `advisories.rejected` entries of a profile
COUNT_LOGGED_EVERY = 60.0  # seconds between log lines counting rejections and repeated failures
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class StreamChange:
    """A stream created, updated or deleted through the JetStream API, as one api_audit
    advisory whose answer was a success says. Anyone allowed to publish on `$JS.EVENT.>` can
    send one: what it says is a claim, to be checked against the server before it changes
    anything but the audit log."""

    id: str  # the advisory's own, unique
    at: datetime  # never later than when it was read
    action: str  # created, updated or deleted
    stream: str
    author: dict[str, Any]  # AUTHOR_FIELDS, as far as the server said
    config: dict[str, Any] | None  # the stream's config as the server answered, if it did
    request: Any  # what the client sent (JSON, or its first REQUEST_KEPT bytes), or None
    request_truncated: bool
    subject: str

    @property
    def identified(self) -> bool:
        """Whether the server described the client (2.11+) or only its account (2.9, 2.10)."""
        return "host" in self.author or "client_id" in self.author


class Malformed(ValueError):
    """An advisory on the API audit subject that is not what a server sends: rejected."""


def parse(data: bytes) -> StreamChange | None:
    """The stream change an advisory reports; None for any other advisory, a failed request or
    one made by this dashboard (its connections carry CLIENT_NAME). Raises Malformed for an
    advisory whose shape or types are not what a server sends."""
    advisory = _json(data)
    if not isinstance(advisory, dict):
        raise Malformed("not a JSON object")
    if advisory.get("type") != API_AUDIT_TYPE:
        return None
    subject = advisory.get("subject")
    if not isinstance(subject, str):
        raise Malformed("no request subject")
    tokens = subject.split(".")
    # $JS.API.STREAM.<OP>.<name>, or behind a domain's or an import's prefix.
    if len(tokens) < 4 or tokens[-4:-2] != ["API", "STREAM"] or tokens[-2] not in ACTIONS:
        return None
    client = advisory.get("client", {})
    if not isinstance(client, dict):
        raise Malformed("its client is not an object")
    if client.get("name") == CLIENT_NAME:
        return None
    response = _json(advisory.get("response"))
    if not isinstance(response, dict):
        raise Malformed("its response is not a JSON object")
    if response.get("error"):
        return None
    advisory_id, at = advisory.get("id"), _time(advisory.get("timestamp"))
    if not isinstance(advisory_id, str) or not 0 < len(advisory_id) <= 64:
        raise Malformed("no advisory id")
    if at is None:
        raise Malformed("no time zone timestamp")
    action, stream = ACTIONS[tokens[-2]], tokens[-1]
    if naming.name_errors(stream):  # it is read back: `>` would be a wildcard
        raise Malformed("its subject names no valid stream")
    if action == "deleted" and response.get("success") is not True:
        raise Malformed("a deletion's response does not say it succeeded")
    config = None if action == "deleted" else response.get("config")
    if action != "deleted" and (problem := _config_problem(config, stream)):
        raise Malformed(problem)
    request, truncated = _request(advisory.get("request"))
    return StreamChange(
        id=advisory_id, at=min(at, datetime.now(UTC)), action=action, stream=stream,
        author=_author(client), config=config, request=request, request_truncated=truncated,
        subject=subject[:MAX_SUBJECT],
    )


def _config_problem(config: Any, stream: str) -> str:
    """What is wrong with the config a create's or an update's response carries."""
    if not isinstance(config, dict):
        return "its response carries no stream configuration"
    if len(json.dumps(config)) > CONFIG_KEPT:
        return f"its stream configuration is over {CONFIG_KEPT >> 10} KiB"
    if config.get("name") != stream:
        return "its response names another stream than its subject"
    # Keys a newer server knows and this dashboard does not are no sign of a forgery.
    errors = stream_json.type_errors({key: value for key, value in config.items()
                                      if key in stream_json.TYPES and key != "metadata"})
    if errors:
        key = next(iter(errors))
        return f"its response's {key!r}: {errors[key][0]}"
    return ""


def _request(value: Any) -> tuple[Any, bool]:
    """What the client sent, kept whole up to REQUEST_KEPT bytes, else its beginning."""
    if not isinstance(value, str) or not value:
        return None, False
    if len(value.encode()) > REQUEST_KEPT:
        return value.encode()[:REQUEST_KEPT].decode(errors="ignore"), True
    return _json(value), False


def _author(client: dict[str, Any]) -> dict[str, Any]:
    """The client as the server named it: text and numbers only, of a sane length."""
    author = {}
    for theirs, ours in AUTHOR_FIELDS.items():
        value = client.get(theirs)
        if isinstance(value, str) and value:
            author[ours] = value[:MAX_AUTHOR_FIELD]
        elif isinstance(value, int) and not isinstance(value, bool):
            author[ours] = value
    return author


def _json(value: Any) -> Any:
    if not value:
        return None
    try:
        loaded = json.loads(value)
    except (TypeError, ValueError):
        return None
    # A client may send half a UTF-16 pair (`"\ud800"`) in its request. The server reads it
    # as U+FFFD, and so does this: neither the audit chain's hash nor PostgreSQL takes one.
    text = json.dumps(loaded, ensure_ascii=False)
    if naming.lone_surrogate(text):
        return json.loads(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    return loaded


def _time(value: Any) -> datetime | None:
    """An aware time: Go's nanoseconds are cut to microseconds."""
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return at if at.utcoffset() is not None else None


@dataclass(frozen=True)
class Watch:
    """One profile to follow: its id (what the recorder is told) and name (for the log), how
    to connect, and whether to read the capture stream rather than the live advisories."""

    key: int
    name: str
    conn: Connection
    capture: bool


@dataclass(frozen=True)
class Mark:
    """How far a profile's capture stream was recorded: the stream, by its creation time, and
    the highest sequence recorded."""

    stream_created: datetime
    seq: int


@dataclass(frozen=True)
class Gap:
    """Advisories of the capture stream made at `stream_created` that were never read:
    sequences `first` to `last`, or, with `last` None, every one from `first` on, because the
    stream was deleted."""

    stream_created: datetime
    first: int
    last: int | None


Targets = Callable[[], list[Watch]]
# Profile key, the change, and the stream as the server answered after it (None: not there)
# with when that was read.
Recorder = Callable[[int, StreamChange, dict[str, Any] | None, datetime], object]
LossRecorder = Callable[[int, Gap], object]
RejectRecorder = Callable[[int, int, str], object]  # profile key, how many, the latest reason


@dataclass(frozen=True)
class Recorders:
    """What the listener calls with what it read (database work): `targets` the profiles to
    follow, `record` a change, `lost` advisories the capture stream lost unread, `rejected`
    advisories not recorded (malformed, or failing every delivery), `mark` and `read_mark`
    how far a profile's capture stream was recorded."""

    targets: Targets
    record: Recorder
    lost: LossRecorder
    rejected: RejectRecorder
    mark: Callable[[int, Mark], object]
    read_mark: Callable[[int], Mark | None]
    # Profile key, and since when its advisories are followed (None: no longer).
    following: Callable[[int, datetime | None], object]


# Started with a function that wakes the listener: it reads its targets again at once.
Waker = Callable[[Callable[[], None]], object]


def watch(recorders: Recorders, reread: float, waker: Waker | None = None) -> None:
    """Follow every profile `recorders.targets` names, asking it again every `reread` seconds
    and whenever `waker` says so, until SIGINT or SIGTERM. The recorders run on one thread of
    their own, one at a time."""
    with concurrent.futures.ThreadPoolExecutor(1, "memphisadmin-recorder") as recorder:
        asyncio.run(_Listener(recorders, reread, recorder).run(waker))


class _Counted:
    """Something that can happen a thousand times a second (a malformed advisory, the same
    failure again): told the first time, then counted, and the count told at most every
    `every` seconds."""

    def __init__(self, every: float) -> None:
        self.every, self.count, self.told_at = every, 0, -math.inf

    def happened(self) -> int | None:
        """0: tell it now (the first in a while); None: counted; else how many happened
        since it was last told, to be told now."""
        now = time.monotonic()
        if not self.count and now - self.told_at >= self.every:
            self.told_at = now
            return 0
        self.count += 1
        return self.due(now)

    def due(self, now: float | None = None) -> int | None:
        """The count to tell, once `every` seconds have passed since the last telling."""
        now = time.monotonic() if now is None else now
        if not self.count or now - self.told_at < self.every:
            return None
        count, self.count, self.told_at = self.count, 0, now
        return count


async def _either(*events: asyncio.Event) -> None:
    """Until one of the events is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class _Listener:
    def __init__(self, recorders: Recorders, reread: float,
                 recorder: concurrent.futures.Executor) -> None:
        self.recorders, self.reread, self.recorder = recorders, reread, recorder
        self.following: dict[int, tuple[Watch, asyncio.Task[None]]] = {}
        # Per profile: rejected advisories (an entry an hour, a log line a minute) and
        # failures to record one (a traceback, then a count a minute).
        self.entries: dict[int, _Counted] = {}
        self.counts: dict[int, _Counted] = {}
        self.failures: dict[int, _Counted] = {}
        self.latest: dict[int, str] = {}  # the latest rejection's reason

    async def run(self, waker: Waker | None = None) -> None:
        stop, woken = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if waker is not None:
            waker(lambda: loop.call_soon_threadsafe(woken.set))
        log.info("advisory listener started")
        try:
            while not stop.is_set():
                woken.clear()
                await self._follow_targets()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_either(stop, woken), self.reread)
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
            wanted = {target.key: target
                      for target in await self._in_recorder(self.recorders.targets)}
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
                # Not followed until connected again (or ever, when this stopped).
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._in_recorder(self.recorders.following,
                                                           target.key, None))
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
                await self._report_deleted(target, where)
        await self._read_live(target, nc, js, where)

    async def _read_capture(self, target: Watch, nc: Client, js: JetStreamContext,
                            where: str) -> None:
        """Read the capture stream through the durable consumer: an advisory is acknowledged
        once it is recorded (committed), so one that was not is delivered again, also to a
        listener started later."""
        # Made, or updated in place when an older listener made it without max_deliver.
        consumer = await js.add_consumer(CAPTURE_STREAM, ConsumerConfig(
            durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL, ack_wait=30, max_ack_pending=1000,
            max_deliver=MAX_DELIVER))
        created = await self._report_lost(target, js, consumer.ack_floor.stream_seq, where)
        reader = await js.pull_subscribe_bind(DURABLE, CAPTURE_STREAM)
        log.info("%s: following the capture stream %s", where, CAPTURE_STREAM)
        await self._in_recorder(self.recorders.following, target.key, datetime.now(UTC))
        quiet_since = time.monotonic()
        while True:
            try:
                messages = await reader.fetch(BATCH, timeout=WAIT)
            except nats.errors.TimeoutError:
                quiet_since = await self._check(nc, quiet_since)
                await self._tell_counts(target, where)
                continue
            taken = [(msg, await self._take(target, nc, msg, where, acknowledge=True))
                     for msg in messages]
            # The mark first: an advisory acknowledged is one the mark has passed.
            settled = [msg.metadata.sequence.stream for msg, ack in taken if ack is not None]
            if settled:
                await self._in_recorder(self.recorders.mark, target.key,
                                        Mark(created, max(settled)))
            for msg, ack in taken:
                await (msg.nak(delay=NAK_DELAY) if ack is None else ack())
            quiet_since = time.monotonic()

    async def _report_lost(self, target: Watch, js: JetStreamContext, ack_floor: int,
                           where: str) -> datetime:
        """Advisories removed from the capture stream before they were recorded, found as the
        listener (re)connects: those between the last one recorded and the stream's first.
        Its size or age limit drops them (a busy account, a listener down for long) and a
        purge removes them, which moves the consumer's ack floor with it; so the mark (how far
        this stream was recorded) counts, and the ack floor only where there is no mark yet.
        A stream made again since the mark was written means the old one was deleted.
        Returns the stream's creation time, which the marks written from now on name."""
        info = await js.stream_info(CAPTURE_STREAM)
        first, created = info.state.first_seq, info.created or datetime.min.replace(tzinfo=UTC)
        mark = await self._in_recorder(self.recorders.read_mark, target.key)
        recorded = ack_floor
        if mark is not None and mark.stream_created == created:
            recorded = mark.seq
        elif mark is not None:
            await self._report_deleted(target, where)
        if first > recorded + 1:
            log.warning("%s: %d advisories were removed from the capture stream before they "
                        "were read", where, first - 1 - recorded)
            await self._in_recorder(self.recorders.lost, target.key,
                                    Gap(created, recorded + 1, first - 1))
        return created

    async def _report_deleted(self, target: Watch, where: str) -> None:
        """The capture stream read so far is gone: whatever came after its mark is lost."""
        mark = await self._in_recorder(self.recorders.read_mark, target.key)
        if mark is None:  # never read, or reported already
            return
        log.warning("%s: the capture stream %s was deleted after the listener recorded it up "
                    "to sequence %d", where, CAPTURE_STREAM, mark.seq)
        await self._in_recorder(self.recorders.lost, target.key,
                                Gap(mark.stream_created, mark.seq + 1, None))

    async def _read_live(self, target: Watch, nc: Client, js: JetStreamContext,
                         where: str) -> None:
        """Read the advisories as they are published: whatever comes while the listener is
        not connected is lost. With the capture stream wanted but missing, look for it now
        and then, and read it as soon as it is there (it holds what came meanwhile)."""
        subscription = await nc.subscribe(API_AUDIT_SUBJECT)
        await nc.flush(timeout=5)  # the server knows of the subscription from here on
        log.info("%s: following the live advisories", where)
        await self._in_recorder(self.recorders.following, target.key, datetime.now(UTC))
        quiet_since = looked_at = time.monotonic()
        while True:
            try:
                msg = await subscription.next_msg(timeout=WAIT)
            except nats.errors.TimeoutError:
                quiet_since = await self._check(nc, quiet_since)
                await self._tell_counts(target, where)
                if target.capture and time.monotonic() - looked_at > self.reread:
                    looked_at = time.monotonic()
                    if await _stream_exists(js, CAPTURE_STREAM):
                        await subscription.unsubscribe()
                        await self._read_capture(target, nc, js, where)
                continue
            await self._take(target, nc, msg, where, acknowledge=False)
            quiet_since = time.monotonic()

    async def _take(self, target: Watch, nc: Client, msg: Msg, where: str, *,
                    acknowledge: bool) -> Callable[[], Awaitable[None]] | None:
        """Record one advisory if it is a stream change, with the stream as the server now
        says it is, and say how to settle it: acknowledge it, terminate it, or (None) have it
        come again. A malformed one is rejected. A change that could not be recorded comes
        again when it came from the capture stream, MAX_DELIVER times in all before it is
        rejected; it is lost (and logged) otherwise."""
        try:
            change = parse(msg.data)
        except Malformed as problem:
            await self._reject(target, where, f"a malformed advisory: {problem}")
            return msg.ack
        except Exception as exc:  # a bug, not the message: never let one stop the rest
            self._failed(target, where, "an advisory", exc)
            return msg.ack
        if change is None:
            return msg.ack
        try:
            read_at = datetime.now(UTC)
            current = await info_or_none(nc, target.conn, change.stream)
            await self._in_recorder(self.recorders.record, target.key, change, current,
                                    read_at)
        except Exception as exc:
            failure = f"advisory {change.id} ({change.stream} {change.action})"
            self._failed(target, where, failure, exc)
            if not acknowledge or msg.metadata.num_delivered < MAX_DELIVER:
                return None
            await self._reject(target, where, f"{failure} could not be recorded in "
                               f"{MAX_DELIVER} attempts: {_reason(exc)}")
            return msg.term
        return msg.ack

    async def _reject(self, target: Watch, where: str, reason: str) -> None:
        """An `advisories.rejected` entry for the first rejected advisory in an hour, then one
        an hour at most with how many came since; a log line for the first in a minute, then
        one a minute with the count: a flood fills neither the audit log nor the listener's."""
        self.latest[target.key] = reason
        counts = self.counts.setdefault(target.key, _Counted(COUNT_LOGGED_EVERY))
        if (since := counts.happened()) == 0:
            log.warning("%s: rejected %s", where, reason)
        elif since:
            log.warning("%s: %d more advisories rejected, the latest %s", where, since, reason)
        entries = self.entries.setdefault(target.key, _Counted(REJECTED_ENTRY_EVERY))
        if (count := entries.happened()) is not None:
            await self._write_rejected(target, where, count or 1, reason)

    async def _write_rejected(self, target: Watch, where: str, count: int,
                              reason: str) -> None:
        try:
            await self._in_recorder(self.recorders.rejected, target.key, count, reason)
        except Exception as exc:
            self._failed(target, where, "an advisories.rejected entry", exc)

    async def _tell_counts(self, target: Watch, where: str) -> None:
        """When the advisories stop coming, the counts not yet told are told when due."""
        if counted := self.counts.get(target.key, _Counted(0)).due():
            log.warning("%s: %d more advisories rejected", where, counted)
        if failed := self.failures.get(target.key, _Counted(0)).due():
            log.warning("%s: the same failure to record %d more times", where, failed)
        if unwritten := self.entries.get(target.key, _Counted(0)).due():
            await self._write_rejected(target, where, unwritten, self.latest[target.key])

    def _failed(self, target: Watch, where: str, what: str, exc: Exception) -> None:
        """Log a failure to record with its traceback once, then how often failures came."""
        failures = self.failures.setdefault(target.key, _Counted(COUNT_LOGGED_EVERY))
        if (since := failures.happened()) == 0:
            log.warning("%s: %s could not be recorded", where, what, exc_info=exc)
        elif since:
            log.warning("%s: the same failure to record %d more times, the latest with %s: %s",
                        where, since, what, _reason(exc))

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


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


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
