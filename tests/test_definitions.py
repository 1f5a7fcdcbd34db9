"""Stream definitions as the source of truth: every listed stream is managed or unmanaged, a
managed one in sync, drifted (with its field-level diff) or missing; streams made elsewhere are
adopted. On real servers (2.15 and 2.9, and the three-node cluster), changed from separate
connections the way `nats stream edit` or an application would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from streams import definitions
from streams.cli_values import NS
from streams.models import AuditEvent, JobStatus, Profile, Stream, StreamDefinition
from streams.stream_config import parse_version
from tests.support.cluster import CLUSTER_NAME
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, create_raw, live_config
from tests.support.stream_forms import create_stream, refresh_list, run_post

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(params=["2.15", "2.9"])
def profile(request: pytest.FixtureRequest, make_profile: Callable[..., Profile]) -> Profile:
    server: NatsServer = request.getfixturevalue(
        "nats_server" if request.param == "2.15" else "nats_29_server")
    return make_profile(server, last_server_version=server.version)


def every_option(profile: Profile) -> dict[str, str]:
    """Every option the create form offers on this server, each away from its default."""
    answers = {
        "name": "every_option", "subjects": "every.>, also.one", "storage": "file",
        "num_replicas": "1", "retention": "limits", "discard": "new", "max_msgs": "1000",
        "max_msgs_per_subject": "10", "max_bytes": "1MiB", "max_age": "1h",
        "max_msg_size": "64KiB", "duplicate_window": "1m", "allow_rollup_hdrs": "yes",
        "allow_delete": "no", "allow_purge": "yes", "description": "every option",
        "max_consumers": "10", "discard_new_per_subject": "on", "allow_direct": "on",
        "republish_src": "every.>", "republish_dest": "copy.>", "republish_headers_only": "on",
        "sources": "every_origin", "no_ack": "on",
    }
    if parse_version(profile.last_server_version) >= (2, 10, 0):
        answers.update(compression="s2", first_seq="100", metadata="team=core\nowner=alice",
                       subject_transform_src="also.one", subject_transform_dest="also.two")
    if parse_version(profile.last_server_version) >= (2, 11, 0):
        answers.update(allow_msg_ttl="on", subject_delete_marker_ttl="2s")
    return answers


def rows(profile: Profile) -> dict[str, Stream]:
    return {stream.name: stream for stream in Stream.objects.filter(profile=profile)}


def page(client: Client, profile: Profile, **query: str) -> str:
    return client.get(reverse("stream_list", args=[profile.pk]), query).content.decode()


def test_the_servers_spelling_is_never_drift() -> None:
    stored = {"name": "s", "max_msgs": -1, "max_age": 0, "storage": "file", "sources": [
        {"name": "a", "filter_subject": "a.x"}], "metadata": {"team": "core"}}
    live = {"name": "s", "max_msgs": 0, "max_age": -1, "discard": "old", "allow_direct": False,
            "sources": [{"name": "a", "filter_subject": "a.x", "external": None}],
            "metadata": {"team": "core", "_nats.ver": "2.15.0", "_nats.level": "1"},
            "consumer_limits": {}, "compression": "none"}
    assert definitions.drift(stored, live) == {}
    live = {**live, "max_msgs": 5, "sources": [{"name": "a", "filter_subject": "a.y"}],
            "deny_delete": True}
    assert definitions.drift(stored, live) == {
        "max_msgs": [-1, 5], "sources": [stored["sources"], live["sources"]],
        "deny_delete": [None, True]}


def test_every_option_created_here_is_in_sync_and_stays_so(
    client_alice: Client, profile: Profile,
) -> None:
    """No false drift: defaults the server fills in, keys it adds, its normalisations."""
    url = profile.server_list[0]
    create_raw(url, {"name": "every_origin", "subjects": ["every_origin.>"]})
    job = create_stream(client_alice, profile, **every_option(profile))
    assert job.status == JobStatus.SUCCEEDED, job.error
    create_stream(client_alice, profile, name="mirrored", subjects="",
                  mirror="every_option", mirror_direct="on", allow_direct="on")
    assert refresh_list(client_alice, profile).status == JobStatus.SUCCEEDED
    listed = rows(profile)
    for name in ("every_option", "mirrored"):
        assert (listed[name].sync, listed[name].drift) == ("in_sync", None), name
    assert listed["every_origin"].sync == "unmanaged"
    # The definition is what the server answered, not what the form sent.
    definition = StreamDefinition.objects.get(profile=profile, name="every_option").config
    assert definition == live_config(url, "every_option")


def test_a_change_made_outside_shows_as_drift_with_its_diff(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    job = create_stream(client_alice, profile, name="def_orders", subjects="def_orders.>")
    assert job.status == JobStatus.SUCCEEDED, job.error
    config = live_config(url, "def_orders")
    # As `nats stream edit` sends it: the whole config, two fields changed.
    api(url, "STREAM.UPDATE.def_orders", {**config, "max_msgs": 500, "max_age": 3600 * NS})
    refresh_list(client_alice, profile)
    stream = rows(profile)["def_orders"]
    assert stream.sync == "drifted"
    assert stream.drift == {"max_msgs": [-1, 500], "max_age": [0, 3600 * NS]}
    detail = client_alice.get(reverse("stream_detail", args=[profile.pk, "def_orders"]))
    table = detail.content.decode().split('<table class="table diff drift">')[1]
    assert ('<td>Stream Messages Limit</td><td class="mono">-1</td>'
            '<td class="mono">500</td>') in table
    assert '<td>Message TTL</td><td class="mono">-1</td><td class="mono">1h0m0s</td>' in table
    # No listener recorded it: the read did, author unknown, once however often it reads.
    refresh_list(client_alice, profile)
    entry = AuditEvent.objects.get(action="stream.changed_outside", target_name="def_orders")
    assert (entry.actor_name, entry.changes) == ("nats:unknown", stream.drift)
    assert "differs from its definition in Stream Messages Limit, Message TTL" in entry.message
    # Changed back outside: in sync again, and that is recorded too.
    api(url, "STREAM.UPDATE.def_orders", config)
    refresh_list(client_alice, profile)
    stream = rows(profile)["def_orders"]
    assert (stream.sync, stream.drift) == ("in_sync", None)
    entries = AuditEvent.objects.filter(action="stream.changed_outside").order_by("seq")
    assert [entry.message.split(" (")[0] for entry in entries][1:] == [
        "changed outside the dashboard back to its definition"]


def test_a_stream_deleted_outside_is_missing_and_keeps_its_definition(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    job = create_stream(client_alice, profile, name="def_fleeting", subjects="def_fleeting")
    assert job.status == JobStatus.SUCCEEDED, job.error
    api(url, "STREAM.DELETE.def_fleeting")
    refresh_list(client_alice, profile)
    stream = rows(profile)["def_fleeting"]
    assert (stream.sync, stream.status) == ("missing", "gone")
    assert StreamDefinition.objects.filter(profile=profile, name="def_fleeting").exists()
    detail = client_alice.get(reverse("stream_detail", args=[profile.pk, "def_fleeting"]))
    assert "Deleted on the server outside the dashboard" in detail.content.decode()
    edit = client_alice.get(reverse("stream_edit", args=[profile.pk, "def_fleeting"]))
    assert edit.status_code == 403
    refresh_list(client_alice, profile)  # a listing keeps it while it is defined
    assert rows(profile)["def_fleeting"].sync == "missing"
    [entry] = AuditEvent.objects.filter(action="stream.changed_outside")
    assert entry.message.startswith("deleted outside the dashboard; its definition here")


@pytest.fixture
def own_server(tmp_path: Any) -> Iterator[NatsServer]:
    """A server of this test's own, so the counts are exact."""
    server = NatsServer.start(tmp_path)
    yield server
    server.stop()


def test_the_list_filters_by_state_and_counts_them(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    profile = make_profile(own_server)
    url = own_server.url
    for name in ("kept", "edited", "dropped"):
        create_stream(client_alice, profile, name=name, subjects=name)
    create_raw(url, {"name": "foreign", "subjects": ["foreign"]})
    create_raw(url, {"name": "KV_bucket", "subjects": ["$KV.bucket.>"]})  # a system stream
    api(url, "STREAM.UPDATE.edited", {**live_config(url, "edited"), "description": "x"})
    api(url, "STREAM.DELETE.dropped")
    refresh_list(client_alice, profile)
    html = page(client_alice, profile)
    for state, count in (("unmanaged", 1), ("in_sync", 1), ("drifted", 1), ("missing", 1)):
        assert f'class="sync-{state}"' in html
        assert html.split(f'class="sync-{state}"')[1].split(">")[1].startswith(f"{count} ")
    listed = {state: page(client_alice, profile, sync=state) for state in
              ("unmanaged", "in_sync", "drifted", "missing", "managed")}
    names = {state: {name for name in ("kept", "edited", "dropped", "foreign")
                     if f'data-name="{name}"' in html} for state, html in listed.items()}
    assert names == {"unmanaged": {"foreign"}, "in_sync": {"kept"}, "drifted": {"edited"},
                     "missing": {"dropped"}, "managed": {"kept", "edited", "dropped"}}


def adopt(client: Client, profile: Profile, data: dict[str, Any]) -> Any:
    return run_post(client, reverse("stream_adopt", args=[profile.pk]), data)


def test_streams_made_elsewhere_are_adopted_one_ticked_or_all_matching(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    for name in ("def_app_a", "def_app_b", "def_other"):
        create_raw(url, {"name": name, "subjects": [f"{name}.>"], "max_msgs": 7})
    refresh_list(client_alice, profile)
    assert 'name="name" value="def_app_a" form="plan-form"' in page(client_alice, profile)
    # Changed since the listing: adoption takes the config as it is now.
    api(url, "STREAM.UPDATE.def_other", {**live_config(url, "def_other"), "max_msgs": 8})
    job = adopt(client_alice, profile, {"name": ["def_other"]})
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert StreamDefinition.objects.get(profile=profile, name="def_other").config == \
        live_config(url, "def_other")
    assert rows(profile)["def_other"].sync == "in_sync"
    assert rows(profile)["def_app_a"].sync == "unmanaged"
    job = adopt(client_alice, profile, {"matching": "1", "q": "def_app_"})
    assert job.status == JobStatus.SUCCEEDED and job.result["adopted"] == 2
    names = ("def_app_a", "def_app_b", "def_other")
    assert {name: rows(profile)[name].sync for name in names} == dict.fromkeys(names, "in_sync")
    entries = AuditEvent.objects.filter(action="stream.adopted").order_by("seq")
    assert [(entry.target_name, entry.actor_name, entry.after["max_msgs"])
            for entry in entries] == [("def_other", "alice", 8), ("def_app_a", "alice", 7),
                                      ("def_app_b", "alice", 7)]
    # Nothing left to adopt: refused, no job.
    response = client_alice.post(reverse("stream_adopt", args=[profile.pk]),
                                 {"matching": "1", "q": "def_app_"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400


def test_a_replicated_stream_on_a_cluster_is_in_sync(
    client_alice: Client, make_profile: Callable[..., Profile], cluster: list[NatsServer],
) -> None:
    """A cluster fills in placement and replica details: still no drift."""
    profile = make_profile("\n".join(server.url for server in cluster), name="cluster",
                           last_server_version=cluster[0].version)
    job = create_stream(client_alice, profile, name="def_replicated", subjects="def_replicated",
                        num_replicas="3", placement_cluster=CLUSTER_NAME)
    assert job.status == JobStatus.SUCCEEDED, job.error
    refresh_list(client_alice, profile, timeout=60)
    assert (rows(profile)["def_replicated"].sync, rows(profile)["def_replicated"].drift) == (
        "in_sync", None)
    api(cluster[0].url, "STREAM.UPDATE.def_replicated",
        {**live_config(cluster[0].url, "def_replicated"), "num_replicas": 1})
    refresh_list(client_alice, profile, timeout=60)
    assert rows(profile)["def_replicated"].drift == {"num_replicas": [3, 1]}
