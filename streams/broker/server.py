"""Who the server is and what JetStream offers the account (Test connection), and the facts
every stream and consumer job reports so the forms' version gates stay current."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from streams import stream_config
from streams.broker.connection import Connection, api_prefix, cluster_size, host_port
from streams.broker.errors import BrokerError
from streams.broker.loop import run


def check_connection(conn: Connection, timeout: float) -> dict[str, Any]:
    """Who the server is, what JetStream offers this account, and the round-trip time."""

    async def report(nc: Client, js: JetStreamContext) -> dict[str, Any]:
        try:
            return await server_report(nc, js)
        except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError):
            if conn.js_domain or conn.js_api_prefix:  # the usual cause: a mistyped domain
                raise BrokerError(f"no JetStream answers at {api_prefix(conn)}: check the "
                                  "JetStream domain or API prefix", field="js_domain") from None
            raise

    return run(conn, report, timeout, fresh=True)  # the point is to connect


async def server_report(nc: Client, js: JetStreamContext) -> dict[str, Any]:
    """Who the server is, and the account's JetStream usage and limits."""
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
        "cluster_size": cluster_size(info),
        "connected_url": host_port(nc.connected_url.geturl()) if nc.connected_url else "",
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


def server_version(nc: Client) -> stream_config.Version:
    """The version of the server this connection reached."""
    return stream_config.parse_version(nc._server_info.get("version", ""))


def server_facts(nc: Client) -> dict[str, Any]:
    """What every stream job reports about the server, so version gates stay current."""
    info = nc._server_info  # nats-py keeps the server's INFO only here
    return {
        "server_version": info.get("version", ""),
        "cluster": info.get("cluster", ""),
        "cluster_size": cluster_size(info),
    }


JOB_TIMEOUT = 30.0  # a whole stream or consumer job, connection included


def with_facts(
    conn: Connection, operation: Callable[[Client], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run a stream or consumer operation on the kept connection; its answer carries the
    server's facts."""

    async def wrapped(nc: Client, js: JetStreamContext) -> dict[str, Any]:
        return {**await operation(nc), **server_facts(nc)}

    return run(conn, wrapped, JOB_TIMEOUT + conn.connect_timeout * len(conn.servers))
