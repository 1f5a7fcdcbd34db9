"""A stream's messages, read without consumers: the stream's message get API (direct get where
the stream allows it), so browsing never creates a consumer or moves one. Also deleting one
message and publishing one."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from streams import payloads
from streams.broker.connection import API_TIMEOUT, Connection, api_prefix, request
from streams.broker.errors import BrokerError
from streams.broker.server import with_facts
from streams.broker.streams import read_info

NO_MESSAGE = 10037  # the server's "no message found"
PREVIEW_BYTES = 1024  # of each payload, kept for its line in a list: a page stays cheap
DOWNLOAD_BYTES = 8 * 1024 * 1024  # a whole message, passed through the job's row once
VIEW_BYTES = 64 * 1024  # of a payload, for its own page (the rest is a download away)
HEADER_CHARS = 8 * 1024  # of each message's headers kept for the page (JetStream takes 64 KiB)


async def _get(nc: Client, conn: Connection, stream: str, direct: bool,
               query: dict[str, Any], keep: int = PREVIEW_BYTES) -> dict[str, Any] | None:
    """One message as {seq, subject, time, headers, size, data (its first `keep` bytes)}, or
    None when there is none at or after the asked sequence."""
    if direct:
        reply = await _direct_get(nc, f"{api_prefix(conn)}.DIRECT.GET.{stream}", query)
        headers = dict(reply.headers or {})
        if "Nats-Sequence" not in headers:  # the server's status, not a message
            status = headers.get("Status", "")
            if status == "404":
                return None
            raise BrokerError(f"direct get failed: {status} {headers.get('Description', '')}")
        data = reply.data or b""
        return _message(int(headers.pop("Nats-Sequence")), headers.pop("Nats-Subject"),
                        headers.pop("Nats-Time-Stamp", ""),
                        {key: value for key, value in headers.items()
                         if key not in {"Nats-Stream", "Nats-Num-Pending", "Nats-Last-Sequence"}},
                        data, keep)
    try:
        answer = await request(nc, conn, f"STREAM.MSG.GET.{stream}", query)
    except BrokerError as error:
        if error.err_code == NO_MESSAGE:
            return None
        raise
    stored = answer["message"]
    return _message(stored["seq"], stored["subject"], stored.get("time", ""),
                    _parse_headers(base64.b64decode(stored.get("hdrs") or "")),
                    base64.b64decode(stored.get("data") or ""), keep)


async def _direct_get(nc: Client, subject: str, query: dict[str, Any]) -> Msg:
    """One DIRECT.GET answer. Not nc.request: it takes a `Status: 503` header for "no
    responders", and a stored message may carry a Status header of its own (its other headers
    come along), so only an answer without Nats-Sequence is the server's status."""
    sub = await nc.subscribe(nc.new_inbox())
    try:
        await nc.publish(subject, json.dumps(query).encode(), reply=sub.subject)
        return await sub.next_msg(timeout=API_TIMEOUT)
    finally:
        await sub.unsubscribe()


def _message(seq: int, subject: str, time: str, headers: dict[str, Any], data: bytes,
             keep: int) -> dict[str, Any]:
    kept, cut = _kept_headers(headers)
    return {"seq": seq, "subject": subject, "time": time, "headers": kept,
            "headers_cut": cut, "size": len(data),
            "data": base64.b64encode(data[:keep]).decode()}


def _kept_headers(headers: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The headers up to HEADER_CHARS of names and values, the one crossing it cut short, and
    whether any were cut."""
    kept: dict[str, str] = {}
    room = HEADER_CHARS
    for key, value in headers.items():
        if room <= 0:
            return kept, True
        kept[key[:room]] = value[:max(room - len(key), 0)]
        room -= len(key) + len(value)
    return kept, room < 0


def _parse_headers(block: bytes) -> dict[str, str]:
    """`NATS/1.0\\r\\nKey: value\\r\\n…` (as stored) → {key: value}; repeated keys joined."""
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key:
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def browse(conn: Connection, stream: str, *, start: int, count: int, subject: str = "",
           at: datetime | None = None) -> dict[str, Any]:
    """Up to `count` messages from sequence `start` on (or from the first stored at or after
    `at`), matching `subject` (wildcards allowed), and the stream's first and last sequence."""

    async def operation(nc: Client) -> dict[str, Any]:
        info = await read_info(nc, conn, stream)
        state, config = info.get("state") or {}, info["config"]
        direct = bool(config.get("allow_direct"))
        first, last = state.get("first_seq", 0), state.get("last_seq", 0)
        filter_subject = subject or ">"
        seq = max(start, first)
        if at is not None:
            seq = await _first_at(nc, conn, stream, direct, first, last, at)
        messages = []
        while len(messages) < count and seq <= last:
            message = await _get(nc, conn, stream, direct,
                                 {"seq": seq, "next_by_subj": filter_subject})
            if message is None:
                break
            messages.append(message)
            seq = message["seq"] + 1
        return {"messages": messages, "first_seq": first, "last_seq": last,
                "direct": direct, "start": messages[0]["seq"] if messages else seq}

    return with_facts(conn, operation)


async def _first_at(nc: Client, conn: Connection, stream: str, direct: bool, first: int,
                    last: int, at: datetime) -> int:
    """The first sequence stored at or after `at`: a binary search over the sequences (every
    supported server can get by sequence; not all can get by time)."""
    low, high = first, last + 1
    while low < high:
        middle = (low + high) // 2
        message = await _get(nc, conn, stream, direct, {"seq": middle, "next_by_subj": ">"})
        if message is None:
            high = middle
        elif datetime.fromisoformat(message["time"]) < at:
            low = message["seq"] + 1
        else:
            high = middle
    return low


def get_message(conn: Connection, stream: str, seq: int, *,
                keep: int = DOWNLOAD_BYTES) -> dict[str, Any]:
    """One message: whole for a download (at most DOWNLOAD_BYTES), or the first `keep` bytes of
    its payload for its page."""

    async def operation(nc: Client) -> dict[str, Any]:
        config = (await read_info(nc, conn, stream))["config"]
        message = await _get(nc, conn, stream, bool(config.get("allow_direct")), {"seq": seq},
                             keep=keep)
        if message is None or message["seq"] != seq:
            raise BrokerError(f"No message {seq} in the stream (deleted, or purged).",
                              err_code=NO_MESSAGE)
        if keep == DOWNLOAD_BYTES and message["size"] > DOWNLOAD_BYTES:
            raise BrokerError(f"Message {seq} is {message['size']:,} bytes: the dashboard "
                              f"downloads at most {DOWNLOAD_BYTES:,} (use `nats stream get`).")
        return message

    return with_facts(conn, operation)


def delete_message(conn: Connection, stream: str, seq: int,
                   seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """Remove one message (its sequence stays a gap); refused when the stream denies it, or
    when the message is not the one `seen` on the page (stored at another time: its stream
    was made again since)."""

    async def operation(nc: Client) -> dict[str, Any]:
        config = (await read_info(nc, conn, stream))["config"]
        if config.get("sealed"):
            raise BrokerError("The stream is sealed: its messages cannot be deleted.",
                              err_code=10109)
        if config.get("deny_delete"):
            raise BrokerError("The stream denies message deletion.", err_code=10101)
        direct = bool(config.get("allow_direct"))
        message = await _get(nc, conn, stream, direct, {"seq": seq})
        if message is None or message["seq"] != seq:
            return {"deleted": False, "seq": seq}
        if seen is not None and message["time"] != seen["time"]:
            raise BrokerError(f"Message {seq} is not the one the page showed: it was stored at "
                              f"{message['time']}, after the stream was made again. Browse again.",
                              field="seq")
        try:
            await request(nc, conn, f"STREAM.MSG.DELETE.{stream}", {"seq": seq})
        except nats.errors.TimeoutError:
            # Its answer lost: a retry would find nothing to delete, and this delete would go
            # unrecorded. Read again instead.
            if await _get(nc, conn, stream, direct, {"seq": seq}) is not None:
                raise BrokerError("the server did not confirm the delete in time",
                                  retryable=True) from None
        return {"deleted": True, "seq": seq, "subject": message["subject"],
                "size": message["size"]}

    return with_facts(conn, operation)


def publish(conn: Connection, stream: str, subject: str, data: bytes,
            headers: dict[str, str]) -> dict[str, Any]:
    """Publish one message and wait for the stream's acknowledgement."""

    async def operation(nc: Client) -> dict[str, Any]:
        sent = payloads.published_headers(stream, headers)
        # The server's limit counts the headers too; nats-py checks the body alone, and the
        # server answers a message over it by closing the connection, which reads as a lost ack.
        size = payloads.size(data, sent)
        if size > nc.max_payload:
            raise BrokerError(f"The message is {size:,} bytes with its headers: the server takes "
                              f"at most {nc.max_payload:,} (its max_payload).", field="payload")
        try:
            reply = await nc.request(subject, data, timeout=API_TIMEOUT, headers=sent)
        except nats.errors.NoRespondersError:
            raise BrokerError(f"no stream takes messages on {subject}",
                              field="subject") from None
        except nats.errors.TimeoutError:  # the stream may have stored it, its ack lost
            raise BrokerError(f"{stream} did not acknowledge the message in time: it may have "
                              "been stored all the same; browse the stream before publishing "
                              "it again") from None
        answer = json.loads(reply.data or b"{}")
        if error := answer.get("error"):
            raise BrokerError(f"{error.get('description', 'refused')} "
                              f"(error {error.get('err_code') or error.get('code')})",
                              err_code=error.get("err_code"), field="subject")
        return {"seq": answer.get("seq"), "stream": answer.get("stream"),
                "duplicate": bool(answer.get("duplicate")), "size": len(data)}

    return with_facts(conn, operation)
