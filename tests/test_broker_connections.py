"""The worker's kept broker connections (loop._Keeper): stream operations share one
connection per profile, checked with a ping before each use and replaced when the server went
away or stopped answering; idle ones are closed; Test connection always connects anew."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.broker import connection, loop
from streams.broker import streams as broker_streams
from streams.broker.connection import Connection
from streams.broker.server import check_connection
from tests.support.nats_server import NatsServer
from tests.support.proxies import FreezingProxy
from tests.support.waiting import wait_until

IDLE = 1.0  # the keeper's idle limit in these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """Private to this module, so the only clients it sees are the ones made here."""
    server = NatsServer.start(tmp_path_factory.mktemp("nats-kept"))
    yield server
    server.stop()


@pytest.fixture
def keeper(monkeypatch: pytest.MonkeyPatch) -> Iterator[loop._Keeper]:
    """A keeper of this test's own, as a new worker process would have."""
    keeper = loop._Keeper(idle=IDLE)
    monkeypatch.setattr(loop, "_keeper_instance", keeper)
    yield keeper
    loop.close_kept_connections()


def ours(server: NatsServer, state: str = "open") -> list[dict[str, Any]]:
    connections = server.connz(f"?state={state}").get("connections") or []
    return [c for c in connections if c.get("name") == connection.CLIENT_NAME]


def test_stream_operations_share_one_connection_per_profile(
    server: NatsServer, keeper: loop._Keeper,
) -> None:
    conn = Connection(servers=(server.url,))
    broker_streams.list_streams(conn)
    (first,) = ours(server)
    for _ in range(3):
        assert broker_streams.list_streams(conn)["server_version"] == server.version
    (same,) = ours(server)
    assert same["cid"] == first["cid"]
    # Anything that tells two profiles apart (here the connect timeout) means a connection each.
    broker_streams.list_streams(Connection(servers=(server.url,), connect_timeout=1.5))
    assert len(ours(server)) == 2


def test_test_connection_connects_anew_and_leaves_nothing_open(
    server: NatsServer, keeper: loop._Keeper,
) -> None:
    conn = Connection(servers=(server.url,))
    # Earlier tests' closes reach the server.
    wait_until(lambda: ours(server) == [], 5, "earlier tests' connections are still open")
    closed_before = len(ours(server, "closed"))
    for _ in range(2):
        assert check_connection(conn, timeout=10)["version"] == server.version
    assert keeper.clients == {}
    wait_until(lambda: len(ours(server, "closed")) == closed_before + 2, 5,
               "the two test connections were not both closed")
    assert ours(server) == []


def test_a_restarted_server_gets_a_new_connection(
    tmp_path: Path, keeper: loop._Keeper,
) -> None:
    server = NatsServer.start(tmp_path / "nats")
    try:
        conn = Connection(servers=(server.url,))
        broker_streams.list_streams(conn)
        kept = keeper.clients[conn]
        server.restart()
        started = time.monotonic()
        assert broker_streams.list_streams(conn)["total"] == 0
        assert time.monotonic() - started < 2
        assert keeper.clients[conn] is not kept and kept.is_closed
        assert len(ours(server)) == 1
    finally:
        server.stop()


def test_a_connection_that_stopped_answering_is_replaced(
    server: NatsServer, keeper: loop._Keeper,
) -> None:
    with FreezingProxy(server.port) as proxy:
        conn = Connection(servers=(proxy.url,), connect_timeout=0.5)
        broker_streams.list_streams(conn)
        proxy.freeze()  # the kept connection goes silent; no reset, no close
        started = time.monotonic()
        assert broker_streams.list_streams(conn)["total"] == 0
        # One unanswered ping (the connect timeout), then a new connection.
        assert time.monotonic() - started < 0.5 + 1.5
        assert proxy.connections == 2


def test_idle_connections_are_closed(server: NatsServer, keeper: loop._Keeper) -> None:
    wait_until(lambda: ours(server) == [], 5, "earlier tests' connections are still open")
    conn = Connection(servers=(server.url,))
    broker_streams.list_streams(conn)
    assert len(ours(server)) == 1
    wait_until(lambda: ours(server) == [], IDLE * 3, "the idle connection is still open")
    assert conn not in keeper.clients
    broker_streams.list_streams(conn)  # and the next job simply connects again
    assert len(ours(server)) == 1
