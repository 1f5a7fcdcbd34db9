"""Streams on the broker: list (complete, past the API's pages), info, create, update (read,
modify, write), delete and purge, each reconciled when its answer was lost."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from streams import stream_config
from streams.broker.connection import Connection, request
from streams.broker.consumers import list_consumers
from streams.broker.errors import NOT_FOUND, BrokerError, NotAsSeen, translate
from streams.broker.loop import run_streaming
from streams.broker.server import JOB_TIMEOUT, with_facts

# Raw JetStream API requests with JSON dicts: nats-py's StreamConfig drops fields it does not
# know, and an update must send back every field, known or not.

LIST_PAGE = 256  # the server's STREAM.LIST page size
NAMES_PAGE = 1024  # and STREAM.NAMES's

# What a step says when the stream is no longer the one its user saw.
PLAN_STALE = "since the plan was made: plan again"
PAGE_STALE = "since the page was read: check it and confirm again"


async def read_info(nc: Client, conn: Connection, name: str, **body: Any) -> dict[str, Any]:
    answer = await request(nc, conn, f"STREAM.INFO.{name}", body or None)
    answer.pop("type", None)
    return answer


async def info_or_none(nc: Client, conn: Connection, name: str) -> dict[str, Any] | None:
    try:
        return await read_info(nc, conn, name)
    except BrokerError as error:
        if error.err_code == NOT_FOUND:
            return None
        raise


def list_streams(conn: Connection) -> dict[str, Any]:
    """Every stream, however many (see listing)."""
    return with_facts(conn, lambda nc: listing(nc, conn))


async def listing(nc: Client, conn: Connection) -> dict[str, Any]:
    """Every stream: STREAM.LIST pages of 256 until `total`. After the first page the rest
    are requested at once, which is what makes a long listing quick."""
    first = await request(nc, conn, "STREAM.LIST", {"offset": 0})
    pages = [first] + list(await asyncio.gather(*(
        request(nc, conn, "STREAM.LIST", {"offset": offset})
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


def stream_info(conn: Connection, name: str) -> dict[str, Any]:
    """The stream's config, state (with per-subject counts, capped) and cluster status, and
    its consumers."""

    async def operation(nc: Client) -> dict[str, Any]:
        info = await read_info(nc, conn, name, subjects_filter=">")
        return {"info": info, **await list_consumers(nc, conn, name)}

    return with_facts(conn, operation)


INFO_CONCURRENCY = 32  # STREAM.INFO requests in flight at once, well under the API's limit


def stream_infos(conn: Connection, names: list[str]) -> dict[str, Any]:
    """The info of each named stream, asked concurrently; `gone` names those not found."""

    async def operation(nc: Client) -> dict[str, Any]:
        slots = asyncio.Semaphore(INFO_CONCURRENCY)

        async def one(name: str) -> dict[str, Any] | None:
            async with slots:
                return await info_or_none(nc, conn, name)

        infos = await asyncio.gather(*(one(name) for name in names))
        return {"infos": [info for info in infos if info is not None],
                "gone": [name for name, info in zip(names, infos, strict=True) if info is None]}

    return with_facts(conn, operation)


def create_stream(conn: Connection, config: dict[str, Any]) -> dict[str, Any]:
    """Create the stream, unless it exists with this config already (the server answers an
    identical create as if it had made the stream: `created` says which it was; a different
    config is the server's error 10058). A create that timed out may have been applied: then
    the stream's info tells."""

    async def operation(nc: Client) -> dict[str, Any]:
        existing = await info_or_none(nc, conn, config["name"])
        if existing is not None and not _differs(existing["config"], config):
            return {"info": existing, "created": False}
        return {"info": await _create(nc, conn, config), "created": True}

    return with_facts(conn, operation)


async def _create(nc: Client, conn: Connection, config: dict[str, Any]) -> dict[str, Any]:
    name = config["name"]
    try:
        answer = await request(nc, conn, f"STREAM.CREATE.{name}", config)
    except nats.errors.TimeoutError:
        info = await info_or_none(nc, conn, name)
        if info is None or _differs(info["config"], config):
            raise BrokerError("the server did not confirm the create in time",
                              retryable=True) from None
        answer = info
    answer.pop("type", None)
    answer.pop("did_create", None)
    return answer


def update_stream(conn: Connection, name: str, changes: dict[str, list[Any]]) -> dict[str, Any]:
    """Read-modify-write: read the live config, replace only the changed keys, send it back.
    Fails when someone else changed one of those keys since the form was read."""

    async def operation(nc: Client) -> dict[str, Any]:
        return await _update(nc, conn, name, changes, "changed on the server since the form "
                             "was read: {labels}; reload and edit again")

    return with_facts(conn, operation)


async def _update(nc: Client, conn: Connection, name: str, changes: dict[str, list[Any]],
                  conflict: str, *, by_name: bool = True,
                  seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """`conflict` says what it is when someone changed one of these keys meanwhile; `by_name`
    as in stream_config (False: the changes are a plan's whole values); `seen`, the stream
    they are for (stream_config.sighting), when another of its name must be left alone."""
    info = await read_info(nc, conn, name)
    _refuse_unless_seen(info, seen, PLAN_STALE)
    current = info["config"]
    desired = stream_config.apply(current, changes, by_name=by_name)
    if not stream_config.diff(current, desired, list(changes), by_name=by_name):
        return {"before": current, "info": await read_info(nc, conn, name), "applied": False}
    changed_meanwhile = stream_config.conflicts(current, changes, by_name=by_name)
    if changed_meanwhile:
        labels = ", ".join(stream_config.label_of_key(key) for key in changed_meanwhile)
        raise BrokerError(conflict.format(labels=labels), field=changed_meanwhile[0])
    try:
        answer = await request(nc, conn, f"STREAM.UPDATE.{name}", desired)
    except nats.errors.TimeoutError:
        answer = await read_info(nc, conn, name)
        if stream_config.diff(answer["config"], desired, list(changes), by_name=by_name):
            raise BrokerError("the server did not confirm the update in time",
                              retryable=True) from None
    answer.pop("type", None)
    return {"before": current, "info": answer, "applied": True}


# Requests in flight at once. The server answers API requests with one goroutine per core and
# drops them all once 10,000 are pending (advisory api_limit_reached): a few dozen keep it busy.
APPLY_CONCURRENCY = 64
APPLY_ATTEMPTS = 6  # per stream, for answers that mean "later": 503s (10008, 10023), timeouts


def apply_streams(conn: Connection, ops: list[dict[str, Any]],
                  stop: threading.Event | None = None) -> Iterator[list[dict[str, Any]]]:
    """Run many stream operations concurrently, each reconciled as its single-stream job is,
    and yield their outcomes in batches as they come, so the caller records them and shows
    progress while the rest run. An op is {"name", "op"} with "create" and its "config",
    "update" and its "changes" ({key: [planned from, to]}), or "delete"; an outcome is
    {"name", "op", "error", "err_code"} plus what the single-stream function answers. One
    stream's failure is its own: the others go on. Once `stop` is set no other op starts:
    those under way finish and are yielded, the rest have no outcome."""

    async def operation(nc: Client, js: JetStreamContext,
                        emit: Callable[[dict[str, Any]], None]) -> None:
        existing = await _names(nc, conn) if any(op["op"] == "create" for op in ops) else set()
        slots = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def one(op: dict[str, Any]) -> None:
            async with slots:
                if stop is not None and stop.is_set():
                    return
                answer = await _with_backoff(lambda: _apply_op(nc, conn, op, existing))
                emit({"name": op["name"], "op": op["op"], **answer})

        await asyncio.gather(*(one(op) for op in ops))

    return run_streaming(conn, operation, JOB_TIMEOUT + conn.connect_timeout * len(conn.servers))


async def _apply_op(nc: Client, conn: Connection, op: dict[str, Any],
                    existing: set[str]) -> dict[str, Any]:
    name = op["name"]
    if op["op"] == "update":
        return await _update(nc, conn, name, op["changes"], "the plan was made: {labels}; "
                             "plan again", by_name=False, seen=op.get("seen"))
    if op["op"] == "delete":
        return await _delete(nc, conn, name, op.get("seen"), PLAN_STALE)
    config = op["config"]
    if name in existing:  # made since the plan: the same stream, or a conflict
        info = await read_info(nc, conn, name)
        if _differs(info["config"], config):
            raise BrokerError("made on the server since the plan was made, with another "
                              "configuration: plan again", err_code=10058, field="name")
        return {"info": info, "created": False}
    return {"info": await _create(nc, conn, config), "created": True}


async def _with_backoff(attempt: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """The answer with no error, or the error: retried with backoff while the server says
    "later" (busy, or its answer lost), with jitter so that what failed together does not
    come back together."""
    for attempt_number in range(APPLY_ATTEMPTS):
        try:
            return {**await attempt(), "error": "", "err_code": None}
        except Exception as exc:
            error = translate(exc)
            if not error.retryable or attempt_number == APPLY_ATTEMPTS - 1:
                return {"error": error.message, "err_code": error.err_code}
        await asyncio.sleep(min(0.05 * 2 ** attempt_number, 2.0) * (0.5 + random.random()))
    raise AssertionError("unreachable")


async def _names(nc: Client, conn: Connection) -> set[str]:
    """Every stream's name: STREAM.NAMES pages of 1024, after the first all at once."""
    first = await request(nc, conn, "STREAM.NAMES", {"offset": 0})
    pages = [first] + list(await asyncio.gather(*(
        request(nc, conn, "STREAM.NAMES", {"offset": offset})
        for offset in range(NAMES_PAGE, first.get("total", 0), NAMES_PAGE))))
    return {name for page in pages for name in page.get("streams") or []}


def delete_stream(conn: Connection, name: str,
                  seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Delete the stream, refusing when it is sealed or denies purging, or is not the one
    `seen` (stream_config.sighting) on the page. A stream already gone (a redelivered job
    whose first run deleted it) counts as deleted."""

    async def operation(nc: Client) -> dict[str, Any]:
        return await _delete(nc, conn, name, seen, PAGE_STALE)

    return with_facts(conn, operation)


async def _delete(nc: Client, conn: Connection, name: str, seen: dict[str, Any] | None,
                  stale: str) -> dict[str, Any]:
    info = await info_or_none(nc, conn, name)
    if info is None:
        return {"before": None, "deleted": False}
    _refuse_unless_seen(info, seen, stale)
    _refuse_destruction(info["config"], "deleted")
    try:
        await request(nc, conn, f"STREAM.DELETE.{name}")
    except nats.errors.TimeoutError:
        if await info_or_none(nc, conn, name) is not None:
            raise BrokerError("the server did not confirm the delete in time",
                              retryable=True) from None
    return {"before": info["config"], "state": info.get("state"), "deleted": True}


def purge_stream(
    conn: Connection, name: str, *, subject: str = "", keep: int = 0, seq: int = 0,
    seen: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Purge all, one subject (wildcards allowed), keep the last N, or everything below a
    sequence, of the stream `seen` on the page. Zeros are left out of the request (they would
    mean something else)."""

    async def operation(nc: Client) -> dict[str, Any]:
        info = await read_info(nc, conn, name)
        _refuse_unless_seen(info, seen, PAGE_STALE)
        _refuse_destruction(info["config"], "purged")
        body: dict[str, Any] = {}
        if subject:
            body["filter"] = subject
        if keep:
            body["keep"] = keep
        if seq:
            body["seq"] = seq
        answer = await request(nc, conn, f"STREAM.PURGE.{name}", body or None)
        after = await read_info(nc, conn, name)
        return {"purged": answer.get("purged", 0), "request": body,
                "state_before": info.get("state"), "info": after}

    return with_facts(conn, operation)


def _refuse_unless_seen(info: dict[str, Any], seen: dict[str, Any] | None, stale: str) -> None:
    if seen is not None and (reason := stream_config.changed_since(seen, info)):
        raise NotAsSeen(f"{info['config']['name']} was {reason} {stale}", info, field="name")


def _refuse_destruction(config: dict[str, Any], verb: str) -> None:
    refusal = stream_config.destruction_refusal(config, verb)
    if refusal:
        raise BrokerError(refusal, err_code=10109 if config.get("sealed") else 10110)


def _differs(live: dict[str, Any], asked: dict[str, Any]) -> bool:
    """Whether a live config lacks something the request asked for."""
    return bool(stream_config.diff(live, asked, [key for key in asked if key != "name"]))
