"""A stream's consumers, read with the stream on real servers (2.15, 2.9 and the cluster):
made by other clients, with the numbers the server keeps, past the API's page limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import nats
import pytest
from django.test import Client
from django.urls import reverse

from streams.models import BrokerKind, Consumer, JobStatus, Profile
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, create_raw, in_thread, publish
from tests.support.stream_forms import refresh_stream
from tests.support.versions import both_versions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def pull_and_ack(url: str, stream: str, durable: str, subject: str, fetch: int, ack: int) -> None:
    """What a worker application does: pull `fetch` messages, acknowledge the first `ack`."""

    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream)
        messages = await sub.fetch(fetch, timeout=5)
        for message in messages[:ack]:
            await message.ack_sync(timeout=5)
        await nc.close()

    in_thread(go())


def consumers(profile: Profile, stream: str) -> dict[str, Consumer]:
    return {c.name: c for c in Consumer.objects.filter(profile=profile, stream_name=stream)}


@both_versions
def test_consumers_made_elsewhere_appear_with_the_servers_numbers(
    client_alice: Client, make_profile: Callable[..., Profile], server: NatsServer,
) -> None:
    url = server.url
    create_raw(url, {"name": "shop", "subjects": ["shop.*"]})
    publish(url, [("shop.new", b"n")] * 6 + [("shop.old", b"o")] * 4)
    pull_and_ack(url, "shop", "worker", "shop.new", fetch=3, ack=2)
    api(url, "CONSUMER.CREATE.shop", {"stream_name": "shop", "config": {
        "deliver_subject": "watch.inbox", "ack_policy": "none",
        "inactive_threshold": 60_000_000_000}})
    profile = make_profile(server)
    assert refresh_stream(client_alice, profile, "shop").status == JobStatus.SUCCEEDED
    found = consumers(profile, "shop")
    worker = found.pop("worker")
    assert (worker.durable, worker.push, worker.filter_subjects, worker.ack_policy) == (
        True, False, ["shop.new"], "explicit")
    assert (worker.delivered_seq, worker.ack_floor_seq, worker.pending, worker.ack_pending,
            worker.redelivered) == (3, 2, 3, 1, 0)
    assert worker.last_active is not None
    [watcher] = found.values()  # an ephemeral consumer: the server named it
    assert (watcher.durable, watcher.push, watcher.filter_subjects) == (False, True, [])
    html = client_alice.get(reverse("stream_detail", args=[profile.pk, "shop"])).content.decode()
    section = html.split('<section class="card consumers">')[1].split("</section>")[0]
    assert f"2 · total lag {3 + watcher.pending}" in section
    row = section.split('data-name="worker">')[1].split("</tr>")[0]
    assert "pull · durable" in row and '<td class="pending">3</td>' in row
    assert '<td class="ack-pending">1</td>' in row
    # Deleted elsewhere: the next read drops it.
    api(url, "CONSUMER.DELETE.shop.worker")
    refresh_stream(client_alice, profile, "shop")
    assert "worker" not in consumers(profile, "shop")


def test_the_consumer_list_is_complete_past_the_api_page(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "crowded", "subjects": ["crowded"]})

    async def make() -> None:
        nc = await nats.connect(url)
        await asyncio.gather(*(nc.request(
            f"$JS.API.CONSUMER.DURABLE.CREATE.crowded.c{index:03d}",
            json.dumps({"stream_name": "crowded", "config": {
                "durable_name": f"c{index:03d}", "ack_policy": "explicit"}}).encode(),
            timeout=10) for index in range(300)))
        await nc.close()

    in_thread(make())
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "crowded")
    assert sorted(consumers(profile, "crowded")) == [f"c{index:03d}" for index in range(300)]


def test_memphis_consumer_groups_and_station_names_are_shown(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "orders#eu", "subjects": ["orders#eu.final"]})
    api(url, "CONSUMER.DURABLE.CREATE.orders#eu.billing", {"stream_name": "orders#eu", "config": {
        "durable_name": "billing", "ack_policy": "explicit"}})
    profile = make_profile(nats_server, broker_kind=BrokerKind.MEMPHIS)
    refresh_stream(client_alice, profile, "orders#eu")
    html = client_alice.get(reverse("stream_detail", args=[profile.pk, "orders#eu"]))
    page = html.content.decode()
    assert '<span class="muted station">station orders.eu</span>' in page
    row = page.split('data-name="billing">')[1].split("</tr>")[0]
    assert "Memphis consumer group" in row


def test_a_replicated_streams_consumers_on_a_cluster(
    client_alice: Client, make_profile: Callable[..., Profile], cluster: list[NatsServer],
) -> None:
    url = cluster[0].url
    create_raw(url, {"name": "replicated_shop", "subjects": ["rshop.*"], "num_replicas": 3})
    publish(url, [("rshop.new", b"n")] * 5)
    pull_and_ack(url, "replicated_shop", "r_worker", "rshop.new", fetch=2, ack=2)
    profile = make_profile("\n".join(server.url for server in cluster), name="cluster")
    refresh_stream(client_alice, profile, "replicated_shop")
    worker = consumers(profile, "replicated_shop")["r_worker"]
    assert (worker.delivered_seq, worker.ack_floor_seq, worker.pending, worker.missing) == (
        2, 2, 3, False)
