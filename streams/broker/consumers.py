"""Consumers on the broker: the complete list of a stream's consumers (past the API's pages),
create, update (read, modify, write), delete, pause and resume, each reconciled when its answer
was lost. Raw JSON requests, like streams: nats-py's ConsumerConfig drops fields it does not
know."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
from nats.aio.client import Client

from streams import consumer_config
from streams.broker.connection import Connection, request
from streams.broker.errors import (
    CONSUMER_ERROR_FIELDS,
    CONSUMER_EXISTS,
    CONSUMER_NOT_FOUND,
    BrokerError,
    NotAsSeen,
)
from streams.broker.server import server_version, with_facts

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


async def _info(nc: Client, conn: Connection, stream: str, name: str) -> dict[str, Any]:
    answer = await request(nc, conn, f"CONSUMER.INFO.{stream}.{name}",
                           fields=CONSUMER_ERROR_FIELDS)
    answer.pop("type", None)
    return answer


async def _info_or_none(nc: Client, conn: Connection, stream: str,
                        name: str) -> dict[str, Any] | None:
    try:
        return await _info(nc, conn, stream, name)
    except BrokerError as error:
        if error.err_code == CONSUMER_NOT_FOUND:
            return None
        raise


async def _write(nc: Client, conn: Connection, stream: str, name: str,
                 config: dict[str, Any], action: str) -> dict[str, Any]:
    """CONSUMER.CREATE with the name in the subject (2.9 too). 2.10+ is told whether this is a
    create or an update, so that neither can do the other's work."""
    body: dict[str, Any] = {"stream_name": stream, "config": config}
    if server_version(nc) >= consumer_config.ACTION_SINCE:
        body["action"] = action
    answer = await request(nc, conn, f"CONSUMER.CREATE.{stream}.{name}", body,
                           fields=CONSUMER_ERROR_FIELDS)
    answer.pop("type", None)
    return answer


def create_consumer(conn: Connection, stream: str, config: dict[str, Any]) -> dict[str, Any]:
    """Create a durable consumer, unless it exists with this config already (`created` says
    which). One that exists with another config is refused: 2.9 would quietly change it. A
    create whose answer was lost is found by reading the consumer back."""

    async def operation(nc: Client) -> dict[str, Any]:
        name = config["durable_name"]
        existing = await _info_or_none(nc, conn, stream, name)
        if existing is not None:
            if consumer_config.differs(existing["config"], config):
                raise BrokerError(f"a consumer named {name} already exists on {stream} with "
                                  "another configuration", err_code=CONSUMER_EXISTS,
                                  field="durable_name")
            return {"info": existing, "created": False}
        try:
            info = await _write(nc, conn, stream, name, config, "create")
        except nats.errors.TimeoutError:
            found = await _info_or_none(nc, conn, stream, name)
            if found is None or consumer_config.differs(found["config"], config):
                raise BrokerError("the server did not confirm the create in time",
                                  retryable=True) from None
            info = found
        return {"info": info, "created": True}

    return with_facts(conn, operation)


def update_consumer(conn: Connection, stream: str, name: str,
                    changes: dict[str, list[Any]]) -> dict[str, Any]:
    """Read-modify-write: the live config with only the changed keys replaced. Fails when
    someone else changed one of them since the form was read."""

    async def operation(nc: Client) -> dict[str, Any]:
        current = (await _info(nc, conn, stream, name))["config"]
        desired = consumer_config.apply(current, changes)
        if not consumer_config.diff(current, desired, list(changes)):
            return {"before": current, "info": await _info(nc, conn, stream, name),
                    "applied": False}
        if meanwhile := consumer_config.conflicts(current, changes):
            labels = ", ".join(consumer_config.label_of_key(key) for key in meanwhile)
            raise BrokerError(f"changed on the server since the form was read: {labels}; "
                              "reload and edit again",
                              field=consumer_config.FIELD_OF_KEY.get(meanwhile[0], meanwhile[0]))
        try:
            info = await _write(nc, conn, stream, name, desired, "update")
        except nats.errors.TimeoutError:
            info = await _info(nc, conn, stream, name)
            if consumer_config.diff(info["config"], desired, list(changes)):
                raise BrokerError("the server did not confirm the update in time",
                                  retryable=True) from None
        return {"before": current, "info": info, "applied": True}

    return with_facts(conn, operation)


def delete_consumer(conn: Connection, stream: str, name: str,
                    seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Delete the consumer, unless it is not the one `seen` on the page (stream_config.sighting:
    deleted and made again under its name, or changed, since); one already gone (a redelivered
    job) counts as deleted."""

    async def operation(nc: Client) -> dict[str, Any]:
        info = await _info_or_none(nc, conn, stream, name)
        if info is None:
            return {"before": None, "deleted": False}
        if seen is not None and (reason := consumer_config.changed_since(seen, info)):
            raise NotAsSeen(f"{name} was {reason} since the page was read: check it and "
                            "confirm again", info, field="confirm_name")
        try:
            await request(nc, conn, f"CONSUMER.DELETE.{stream}.{name}",
                          fields=CONSUMER_ERROR_FIELDS)
        except nats.errors.TimeoutError:
            if await _info_or_none(nc, conn, stream, name) is not None:
                raise BrokerError("the server did not confirm the delete in time",
                                  retryable=True) from None
        return {"before": info["config"], "deleted": True}

    return with_facts(conn, operation)


def pause_consumer(conn: Connection, stream: str, name: str,
                   until: str | None) -> dict[str, Any]:
    """Pause until a time (RFC 3339), or resume with None: CONSUMER.PAUSE, 2.11+."""

    async def operation(nc: Client) -> dict[str, Any]:
        if refusal := consumer_config.pause_refusal(server_version(nc)):
            raise BrokerError(refusal)
        before = await _info(nc, conn, stream, name)
        answer = await request(nc, conn, f"CONSUMER.PAUSE.{stream}.{name}",
                               {"pause_until": until} if until else None,
                               fields=CONSUMER_ERROR_FIELDS)
        if until and not answer.get("paused"):
            raise BrokerError("the server did not pause the consumer: is that time past?",
                              field="pause_until")
        return {"before": before, "info": await _info(nc, conn, stream, name),
                "paused": bool(answer.get("paused")), "pause_until": answer.get("pause_until")}

    return with_facts(conn, operation)
