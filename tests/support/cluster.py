"""A three-node (or any size) JetStream cluster on loopback, and bringing a stopped node back."""

from __future__ import annotations

import time
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from tests.support.nats_server import NatsServer
from tests.support.network import LOOPBACK, free_port
from tests.support.raw_jetstream import in_thread
from tests.support.waiting import wait_until

CLUSTER_NAME = "memphisadmin-test"


def start_cluster(
    workdir: Path, size: int = 3, binary: str | None = None, timeout: float = 30.0
) -> list[NatsServer]:
    """JetStream cluster on loopback; returns once an R<size> stream can be created."""
    workdir = Path(workdir).resolve()
    cluster_ports = [free_port() for _ in range(size)]
    routes = ", ".join(f"nats-route://{LOOPBACK}:{p}" for p in cluster_ports)
    servers: list[NatsServer] = []
    try:
        for index, cluster_port in enumerate(cluster_ports, start=1):
            config = (
                f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: {LOOPBACK}:{cluster_port}\n"
                f"  routes: [{routes}]\n}}\n"
            )
            servers.append(
                NatsServer.start(
                    workdir / f"n{index}", config=config, binary=binary, name=f"n{index}"
                )
            )
        wait_for_cluster(servers, timeout)
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


def restart_node(servers: list[NatsServer], node: NatsServer, timeout: float = 60.0) -> None:
    """Start a stopped node again and wait until the whole cluster is healthy, with every
    stream caught up, as it was before the node went away."""
    node.restart()
    wait_for_cluster(servers, timeout, healthy=True)


def wait_for_cluster(servers: list[NatsServer], timeout: float, healthy: bool = False) -> None:
    """One meta leader all nodes agree on, then (with `healthy`) every node's /healthz,
    which waits for its streams to catch up, then a replicated stream made and deleted."""
    deadline = time.monotonic() + timeout
    _wait_for_meta_leader(servers, timeout)
    if healthy:
        wait_until(lambda: all(_healthy(s) for s in servers), deadline - time.monotonic(),
                   lambda: "not every node is healthy\n" + _tails(servers), interval=0.1)
    _wait_for_replicated_stream(servers, deadline - time.monotonic())


def _healthy(server: NatsServer) -> bool:
    server.check_alive()
    try:
        return server.healthz()[0] == 200
    except OSError:
        return False


def _tails(servers: list[NatsServer]) -> str:
    return "\n".join(f"--- {s.name}\n{s.log_tail(20)}" for s in servers)


def _wait_for_meta_leader(servers: list[NatsServer], timeout: float) -> None:
    """Every node agrees on one meta leader and sees all peers (cheap HTTP polling)."""
    leaders: set[str] = set()

    def agreed() -> bool:
        leaders.clear()
        complete = True
        for server in servers:
            server.check_alive()
            try:
                meta = server.jsz().get("meta_cluster") or {}
            except (OSError, RuntimeError, ValueError):
                complete = False
                continue
            leaders.add(meta.get("leader", ""))
            if meta.get("cluster_size", 0) < len(servers):
                complete = False
        return complete and len(leaders) == 1 and "" not in leaders

    wait_until(agreed, timeout,
               lambda: f"no JetStream meta leader (saw {leaders})\n{_tails(servers)}",
               interval=0.1)


def _wait_for_replicated_stream(servers: list[NatsServer], timeout: float) -> None:
    """The real proof: create and delete a replicated stream, retrying while peers settle."""
    errors: list[Exception] = []

    async def quiet(_: Exception) -> None:  # connection errors are expected while retrying
        return None

    async def probe() -> bool:
        try:
            nc = await nats.connect([s.url for s in servers], connect_timeout=2,
                                    allow_reconnect=False, max_reconnect_attempts=0,
                                    error_cb=quiet)
            try:
                js = nc.jetstream(timeout=5)
                name = "SUPPORT_CLUSTER_PROBE"
                await js.add_stream(StreamConfig(name=name, subjects=["_support.probe"],
                                                 num_replicas=len(servers)))
                await js.delete_stream(name)
                return True
            finally:
                await nc.close()
        except Exception as exc:  # any not-ready error: try again
            errors.append(exc)
            return False

    wait_until(lambda: in_thread(probe()), timeout,
               lambda: f"the cluster never accepted an R{len(servers)} stream: {errors[-1:]!r}",
               interval=0.2)
