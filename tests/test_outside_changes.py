"""Who changed it: stream changes made outside the dashboard, from JetStream's API advisories
into the audit log, through the real listener process (`./dev watch`), against servers with a
user for the dashboard and one for somebody else, on the wheel's 2.15 (and Debian's 2.9 where
what an advisory says differs by version)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from streams import audit, outside, profiles, stream_config, system_streams
from streams.broker import advisories
from streams.cli_values import NS
from streams.models import (
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Profile,
    Stream,
    StreamDefinition,
    WorkerHeartbeat,
)
from tests.support import clients
from tests.support.jobs import wait_for_job
from tests.support.listener import Listener
from tests.support.nats_server import NatsServer
from tests.support.network import free_port
from tests.support.plans import apply, restored
from tests.support.raw_jetstream import api, in_thread
from tests.support.stream_forms import create_stream, reviewed_edit, run_post
from tests.support.versions import DEBIAN_NATS_SERVER, both_versions
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

USERS = ('authorization { users: [{user: dash, password: "dash-pass"}, '
         '{user: bob, password: "bob-pass"}] }')
ACTION = "stream.changed_outside"
REJECTED = "advisories.rejected"


def users_server(tmp_path_factory: pytest.TempPathFactory, version: str,
                 ) -> Iterator[NatsServer]:
    binary = DEBIAN_NATS_SERVER if version == "2.9" else None
    server = NatsServer.start(tmp_path_factory.mktemp(f"nats-outside-{version}"),
                              config=USERS, binary=binary)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def users_server_215(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    yield from users_server(tmp_path_factory, "2.15")


@pytest.fixture(scope="module")
def users_server_29(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    yield from users_server(tmp_path_factory, "2.9")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> NatsServer:
    """This module's server, with users: 2.15, and 2.9 too for a test marked both_versions."""
    return request.getfixturevalue({"2.15": "users_server_215", "2.9": "users_server_29"}[
        getattr(request, "param", "2.15")])


def names_users(server: NatsServer) -> bool:
    """Advisories name the client's user from nats-server 2.11 on; before, only its account."""
    return stream_config.parse_version(server.version) >= (2, 11, 0)


def as_bob(server: NatsServer, subject: str, payload: dict[str, Any] | None = None,
           ) -> dict[str, Any]:
    """A raw JetStream API request from another connection, with its own user."""
    answer = api(server.url.replace("nats://", "nats://bob:bob-pass@"), subject, payload)
    assert "error" not in answer, answer
    return answer


@pytest.fixture
def profile(make_profile: Callable[..., Profile], server: NatsServer) -> Profile:
    return make_profile(server, auth_method="user_password", username="dash",
                        password="dash-pass", record_outside=True,
                        last_server_version=server.version)


@pytest.fixture
def listener(profile: Profile, tmp_path: Path) -> Iterator[Listener]:
    listener = Listener(tmp_path)
    listener.wait_following(profile.name)
    yield listener
    listener.stop()


def entries() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=ACTION).order_by("seq"))


def wait_for_entries(count: int, listener: Listener) -> list[AuditEvent]:
    """Until the listener has written `count` entries; a test that then asks for one more
    change and sees its entry next knows nothing else came in between."""
    def written() -> list[AuditEvent] | None:
        listener.check_alive()
        found = entries()
        assert len(found) <= count, [(e.target_name, e.message) for e in found]
        return found if len(found) == count else None

    return wait_until(written, 20, lambda: f"{entries()}\n{listener.log_tail()}")


@both_versions
def test_a_stream_changed_outside_is_recorded_with_its_author_and_the_drift(
    client_alice: Client, profile: Profile, server: NatsServer, listener: Listener,
) -> None:
    assert create_stream(client_alice, profile, name="orders",
                         subjects="orders.>").status == JobStatus.SUCCEEDED
    live = as_bob(server, "STREAM.INFO.orders")["config"]
    as_bob(server, "STREAM.UPDATE.orders", {**live, "max_bytes": 1 << 20,
                                            "description": "bob was here"})

    [entry] = wait_for_entries(1, listener)  # the dashboard's own create is not among them
    assert (entry.target_type, entry.target_name, entry.profile_id) == ("stream", "orders",
                                                                        profile.pk)
    assert entry.outcome == "succeeded" and entry.job_id is None
    # The diff is against the definition the dashboard stored: only what bob changed.
    assert entry.changes == {"description": [None, "bob was here"], "max_bytes": [-1, 1 << 20]}
    assert entry.before["subjects"] == ["orders.>"]  # the definition: what a restore plans
    assert entry.after["max_bytes"] == 1 << 20
    asked = entry.after["advisory"]
    assert asked["request"]["description"] == "bob was here"
    assert asked["subject"] == "$JS.API.STREAM.UPDATE.orders"
    assert "differs from its definition here in Total Stream Size, Description" in entry.message
    if names_users(server):
        assert entry.actor_name == "nats:bob"
        assert asked["author"]["user"] == "bob" and entry.ip == "127.0.0.1"
        assert entry.message.startswith("updated outside the dashboard by bob from 127.0.0.1")
        assert entry.user_agent.startswith("python3 ")  # nats-py's lang and version
    else:
        assert entry.actor_name == "nats:unknown user in account $G"
        assert asked["author"] == {"account": "$G", "server": asked["author"]["server"]}
        assert "(nats-server names the user from 2.11 on)" in entry.message
    assert audit.verify().ok  # chained like every other entry
    row = Stream.objects.get(profile=profile, name="orders")
    assert row.config["max_bytes"] == 1 << 20 and row.status == "ok"
    page = client_alice.get(reverse("audit_detail", args=[entry.seq])).content.decode()
    assert entry.actor_name in page and "Total Stream Size" in page


@both_versions
def test_a_stream_deleted_outside_is_recorded_and_its_row_marked_gone(
    client_alice: Client, profile: Profile, server: NatsServer, listener: Listener,
) -> None:
    assert create_stream(client_alice, profile, name="doomed",
                         subjects="doomed").status == JobStatus.SUCCEEDED
    as_bob(server, "STREAM.DELETE.doomed")

    [entry] = wait_for_entries(1, listener)
    assert entry.target_name == "doomed"
    assert entry.before["subjects"] == ["doomed"]  # the definition, kept
    assert set(entry.after) == {"advisory"} and entry.changes is None
    assert entry.message.startswith("deleted outside the dashboard by ")
    assert entry.message.endswith("; its definition here remains")
    row = Stream.objects.get(profile=profile, name="doomed")
    assert row.status == "gone"
    assert row.status_reason.startswith(f"deleted outside the dashboard by {entry.actor_name}")


def test_a_change_made_outside_offers_to_restore_the_definition(
    client_alice: Client, profile: Profile, server: NatsServer, listener: Listener,
) -> None:
    assert create_stream(client_alice, profile, name="undo", subjects="undo",
                         max_msgs="10").status == JobStatus.SUCCEEDED
    as_bob(server, "STREAM.UPDATE.undo", {**as_bob(server, "STREAM.INFO.undo")["config"],
                                          "max_msgs": 99})
    [entry] = wait_for_entries(1, listener)

    plan = restored(client_alice, entry.seq)
    assert plan.desired["undo"]["max_msgs"] == 10
    assert [(step["name"], step["action"], step["changes"]) for step in plan.steps] == [
        ("undo", "update", {"max_msgs": [99, 10]})]


@both_versions
def test_a_plan_the_dashboard_applies_is_not_recorded_as_made_outside(
    client_alice: Client, profile: Profile, server: NatsServer, listener: Listener,
) -> None:
    """Before 2.11 an apply's changes are told from outside ones by its job, as a create's
    are, though the job's target is the connection and its streams are in its plan."""
    assert create_stream(client_alice, profile, name="redo", subjects="redo",
                         max_msgs="10").status == JobStatus.SUCCEEDED
    as_bob(server, "STREAM.UPDATE.redo", {**as_bob(server, "STREAM.INFO.redo")["config"],
                                          "max_msgs": 99})
    [entry] = wait_for_entries(1, listener)

    apply(client_alice, restored(client_alice, entry.seq))
    assert as_bob(server, "STREAM.INFO.redo")["config"]["max_msgs"] == 10
    as_bob(server, "STREAM.CREATE.later", {"name": "later", "subjects": ["later"]})
    [_, later] = wait_for_entries(2, listener)  # advisories come in order: the apply's first
    assert later.target_name == "later"


def test_an_entry_written_by_the_first_listener_still_offers_its_restore(
    client_alice: Client, profile: Profile, server: NatsServer,
) -> None:
    """Its entries held the definition under "config"; the chain keeps them as written."""
    assert create_stream(client_alice, profile, name="older", subjects="older",
                         max_msgs="10").status == JobStatus.SUCCEEDED
    as_bob(server, "STREAM.UPDATE.older", {**as_bob(server, "STREAM.INFO.older")["config"],
                                           "max_msgs": 99})
    definition = StreamDefinition.objects.get(profile=profile, name="older").config
    entry = AuditEvent.objects.record(ACTION, audit.Context(), target_type="stream",
                                      target_name="older", profile=profile, outcome="succeeded",
                                      actor_name="nats:bob",
                                      before={"config": definition}, after={"config": None})

    plan = restored(client_alice, entry.seq)
    assert [(step["name"], step["action"], step["changes"]) for step in plan.steps] == [
        ("older", "update", {"max_msgs": [99, 10]})]


@both_versions
def test_the_dashboards_own_changes_are_not_recorded_twice(
    client_alice: Client, profile: Profile, server: NatsServer, listener: Listener,
) -> None:
    """Its creates, edits and deletes have their own entries; the listener leaves them out
    (by the client name from 2.11, by the job that ran at that moment before)."""
    assert create_stream(client_alice, profile, name="ours",
                         subjects="ours").status == JobStatus.SUCCEEDED
    edit = run_post(client_alice, reverse("stream_edit", args=[profile.pk, "ours"]),
                    reviewed_edit(client_alice, profile, "ours", max_msgs="10"))
    assert edit.status == JobStatus.SUCCEEDED, edit.error
    delete = run_post(client_alice, reverse("stream_delete", args=[profile.pk, "ours"]),
                      {"confirm_name": "ours"})
    assert delete.status == JobStatus.SUCCEEDED, delete.error
    as_bob(server, "STREAM.CREATE.theirs", {"name": "theirs", "subjects": ["theirs"]})

    [entry] = wait_for_entries(1, listener)  # advisories come in order: ours came first
    assert entry.target_name == "theirs" and entry.message.endswith("; no definition here")
    assert entry.before is None and entry.changes is None
    assert {e.action for e in AuditEvent.objects.filter(target_name="ours")} == {
        "job.requested", "job.finished", "stream.created", "stream.changed", "stream.deleted"}


def test_switching_recording_on_takes_effect_at_once(
    client_alice: Client, make_profile: Callable[..., Profile], server: NatsServer,
    tmp_path: Path,
) -> None:
    """The listener re-reads its profiles every minute here; it is told of the switch."""
    profile = make_profile(server, name="switched", auth_method="user_password",
                           username="dash", password="dash-pass",
                           last_server_version=server.version)
    listener = Listener(tmp_path, ADVISORY_REREAD_INTERVAL="60")
    try:
        # Its first read of the profiles is over (it notes its heartbeat as it reads them).
        wait_until(lambda: WorkerHeartbeat.objects.filter(name=WorkerHeartbeat.LISTENER)
                   .exists(), 20, listener.log_tail)
        before = audit.profile_snapshot(profile)
        profile.record_outside = True
        switched = time.monotonic()
        profiles.save(profile, audit.Context(), before=before)
        listener.wait_following("switched")
        assert time.monotonic() - switched < 10  # told, not found by the minute's re-read
        page = client_alice.get(reverse("profile_detail", args=[profile.pk])).content.decode()
        assert "the listener has followed it since" in page
        as_bob(server, "STREAM.CREATE.switched_on", {"name": "switched_on",
                                                     "subjects": ["switched.on"]})
        [entry] = wait_for_entries(1, listener)
        assert entry.target_name == "switched_on"
    finally:
        listener.stop()
    page = client_alice.get(reverse("profile_detail", args=[profile.pk])).content.decode()
    assert "the listener is not following it" in page


@pytest.fixture(scope="module", params=["nats.js", "nats.go"])
def other_client(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> clients.OtherClient:
    # A missing node, npm, Go or nats.go fails, like a missing server: ./dev test installs them.
    if request.param == "nats.js":
        return clients.nats_js()
    return clients.nats_go(tmp_path_factory.mktemp("nats-go"))


def test_a_change_made_with_the_js_or_go_client_five_seconds_after_switching_on_is_recorded(
    client_alice: Client, make_profile: Callable[..., Profile], server: NatsServer,
    tmp_path: Path, other_client: clients.OtherClient,
) -> None:
    """Switched on in the profile form; the listener re-reads its profiles every minute here,
    so only being told of the switch makes it follow in time."""
    profile = make_profile(server, name="switched-by-form", auth_method="user_password",
                           username="dash", password="dash-pass",
                           last_server_version=server.version)
    listener = Listener(tmp_path, ADVISORY_REREAD_INTERVAL="60")
    try:
        wait_until(lambda: WorkerHeartbeat.objects.filter(name=WorkerHeartbeat.LISTENER)
                   .exists(), 20, listener.log_tail)  # its first read of the profiles is over
        switched = time.monotonic()  # as the user presses Save
        saved = client_alice.post(reverse("profile_edit", args=[profile.pk]), {
            "name": profile.name, "broker_kind": "nats", "servers": server.url,
            "connect_timeout": "2", "auth_method": "user_password", "username": "dash",
            "loaded_at": profile.updated_at.isoformat(), "record_outside": "on"})
        assert saved.status_code == 302, saved.content.decode()
        time.sleep(max(0.0, switched + 5 - time.monotonic()))
        stream = f"made_with_{other_client.lang.replace('.', '_')}"
        other_client.create_stream(server.url, "bob", "bob-pass", stream, "inventory-service")

        [entry] = wait_for_entries(1, listener)
        assert (entry.target_name, entry.actor_name) == (stream, "nats:bob")
        author = entry.after["advisory"]["author"]
        assert (author["client_name"], author["lang"]) == ("inventory-service",
                                                           other_client.lang)
        assert entry.ip == "127.0.0.1"
        assert entry.user_agent == f"inventory-service {other_client.lang} {author['version']}"
        assert entry.message.startswith(
            "created outside the dashboard by bob from 127.0.0.1 with 'inventory-service'")
    finally:
        listener.stop()


def test_a_token_clients_change_names_the_client_the_server_hides_the_user_of(
    make_profile: Callable[..., Profile], tmp_path: Path,
) -> None:
    """With a token, nats-server says "[REDACTED]" for the user: the entry names the client
    (its name, address and language) and says the user is hidden."""
    server = NatsServer.start(tmp_path / "nats", config='authorization { token: "t0ken-4417" }')
    listener = None
    try:
        profile = make_profile(server, name="tokens", auth_method="token", token="t0ken-4417",
                               record_outside=True, last_server_version=server.version)
        listener = Listener(tmp_path)
        listener.wait_following(profile.name)
        in_thread(_create_as_a_named_client(server.url.replace("nats://", "nats://t0ken-4417@")))
        [entry] = wait_for_entries(1, listener)
        assert entry.actor_name == ("nats:orders-service (user hidden by the server: a token "
                                    "login)")
        assert entry.ip == "127.0.0.1" and entry.user_agent.startswith("orders-service python3")
        assert "REDACTED" not in entry.message and "t0ken-4417" not in str(entry.after)
    finally:
        if listener is not None:
            listener.stop()
        server.stop()


async def _create_as_a_named_client(url: str) -> None:
    nc = await nats.connect(url, name="orders-service")
    await nc.request("$JS.API.STREAM.CREATE.by_token", json.dumps(
        {"name": "by_token", "subjects": ["by.token"]}).encode(), timeout=5)
    await nc.close()


def drop_capture_stream(server: NatsServer) -> None:
    """Another test's capture stream holds that test's advisories: start without one."""
    api(server.url.replace("nats://", "nats://bob:bob-pass@"),
        f"STREAM.DELETE.{system_streams.CAPTURE_STREAM}")


def keep_advisories(profile: Profile, keep: bool = True) -> Job:
    """What saving the profile form with the consent ticked (or not) does."""
    before = audit.profile_snapshot(profile)
    profile.keep_advisories = keep
    profiles.save(profile, audit.Context(), before=before)
    return wait_for_job(Job.objects.filter(kind=JobKind.ADVISORY_CAPTURE).latest("pk").pk)


def test_no_advisory_is_lost_while_the_listener_is_down(
    profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    drop_capture_stream(server)
    job = keep_advisories(profile)
    assert job.status == JobStatus.SUCCEEDED, job.error
    first = Listener(tmp_path, "first")
    try:
        first.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.s1", {"name": "s1", "subjects": ["s1"]})
        wait_for_entries(1, first)
    finally:
        first.kill()  # as a crash would: no goodbye to the server or the database

    live = as_bob(server, "STREAM.INFO.s1")["config"]
    as_bob(server, "STREAM.UPDATE.s1", {**live, "max_msgs": 5})
    as_bob(server, "STREAM.CREATE.s2", {"name": "s2", "subjects": ["s2"]})
    as_bob(server, "STREAM.DELETE.s1")

    second = Listener(tmp_path, "second")
    try:
        second.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.s3", {"name": "s3", "subjects": ["s3"]})
        found = wait_for_entries(5, second)  # s3 last: everything before it was read
    finally:
        second.stop()
    assert [(e.target_name, e.message.split(" ")[0]) for e in found] == [
        ("s1", "created"), ("s1", "updated"), ("s2", "created"), ("s1", "deleted"),
        ("s3", "created")]
    assert len({e.after["advisory"]["id"] for e in found}) == 5
    assert found[1].after["max_msgs"] == 5
    assert Stream.objects.get(profile=profile, name="s2").status == "ok"


def entry_for(stream: str, listener: Listener) -> AuditEvent:
    def written() -> AuditEvent | None:
        listener.check_alive()
        return AuditEvent.objects.filter(action=ACTION, target_name=stream).first()

    return wait_until(written, 20, lambda: f"no entry for {stream}\n{listener.log_tail()}")


def test_advisories_the_capture_stream_dropped_unread_are_reported_once(
    profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    drop_capture_stream(server)
    assert keep_advisories(profile).status == JobStatus.SUCCEEDED
    first = Listener(tmp_path, "first")
    try:
        first.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.kept", {"name": "kept", "subjects": ["kept"]})
        entry_for("kept", first)
    finally:
        first.kill()

    for name in ("dropped1", "dropped2", "dropped3"):
        as_bob(server, f"STREAM.CREATE.{name}", {"name": name, "subjects": [name]})
    # A busy account's 8 MiB in small: the capture stream keeps only its newest advisory.
    capture = system_streams.CAPTURE_STREAM
    as_bob(server, f"STREAM.UPDATE.{capture}",
           {**as_bob(server, f"STREAM.INFO.{capture}")["config"], "max_msgs": 1})

    second = Listener(tmp_path, "second")
    try:
        second.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.later", {"name": "later", "subjects": ["later"]})
        entry_for("later", second)
    finally:
        second.stop()
    assert not AuditEvent.objects.filter(action=ACTION, target_name__startswith="dropped")
    [lost] = AuditEvent.objects.filter(action=outside.LOST_ACTION)
    assert lost.profile_id == profile.pk and lost.outcome == "failed"
    assert lost.after["count"] >= 3  # the three creates, and the requests around them
    assert f"{lost.after['count']} advisories" in lost.message
    assert "advisories were removed from the capture stream" in second.log_text()
    # Found again (a second listener, a reconnect before reading on): still one entry.
    gap = advisories.Gap(capture_created(server), lost.after["first_seq"],
                         lost.after["last_seq"])
    assert not outside.record_lost(profile.pk, gap)
    assert AuditEvent.objects.filter(action=outside.LOST_ACTION).count() == 1


def capture_created(server: NatsServer) -> datetime:
    async def created() -> datetime:
        nc = await nats.connect(server.url, user="bob", password="bob-pass")
        info = await nc.jetstream().stream_info(system_streams.CAPTURE_STREAM)
        await nc.close()
        return info.created

    return in_thread(created())


def changes_found_by_a_read(names: set[str], listener: Listener) -> dict[str, AuditEvent]:
    """Until the job the listener submitted has recorded a change to each of `names`."""
    def found() -> dict[str, AuditEvent] | None:
        listener.check_alive()
        entries = {e.target_name: e for e in AuditEvent.objects.filter(
            action=ACTION, target_name__in=names, message__endswith="no advisory named who)")}
        return entries if set(entries) == names else None

    return wait_until(found, 30, lambda: f"{entries()}\n{listener.log_tail()}")


def lost_entry(listener: Listener) -> AuditEvent:
    def written() -> AuditEvent | None:
        listener.check_alive()
        return AuditEvent.objects.filter(action=outside.LOST_ACTION).first()

    return wait_until(written, 20, listener.log_tail)


def three_defined_streams(client: Client, profile: Profile, prefix: str) -> list[str]:
    """Streams of the module's server are its tests' to share: each test names its own."""
    names = [f"{prefix}{index}" for index in range(1, 4)]
    for name in names:
        assert create_stream(client, profile, name=name, subjects=name,
                             max_msgs="10").status == JobStatus.SUCCEEDED
    return names


def three_changes_outside(server: NatsServer, names: list[str]) -> None:
    changed, deleted, described = names
    as_bob(server, f"STREAM.UPDATE.{changed}", {
        **as_bob(server, f"STREAM.INFO.{changed}")["config"], "max_msgs": 5})
    as_bob(server, f"STREAM.DELETE.{deleted}")
    as_bob(server, f"STREAM.UPDATE.{described}", {
        **as_bob(server, f"STREAM.INFO.{described}")["config"], "description": "bob"})


def assert_the_three_changes_recorded(names: list[str], found: dict[str, AuditEvent]) -> None:
    changed, deleted, described = names
    assert {name: (entry.actor_name, entry.message.split(":")[0].split(";")[0])
            for name, entry in found.items()} == {
        changed: ("nats:unknown", "changed outside the dashboard"),
        deleted: ("nats:unknown", "deleted outside the dashboard"),
        described: ("nats:unknown", "changed outside the dashboard")}
    assert found[changed].changes == {"max_msgs": [10, 5]}
    assert found[described].changes == {"description": [None, "bob"]}


def test_a_purged_capture_stream_is_reported_and_every_stream_read_again(
    client_alice: Client, profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    drop_capture_stream(server)
    assert keep_advisories(profile).status == JobStatus.SUCCEEDED
    names = three_defined_streams(client_alice, profile, "purged")
    first = Listener(tmp_path, "first")
    try:
        first.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.marker1", {"name": "marker1", "subjects": ["marker1"]})
        entry_for("marker1", first)  # everything before it was read
    finally:
        first.stop()

    three_changes_outside(server, names)
    as_bob(server, f"STREAM.PURGE.{system_streams.CAPTURE_STREAM}")

    second = Listener(tmp_path, "second")
    try:
        second.wait_following(profile.name, "capture stream")
        lost = lost_entry(second)
        found = changes_found_by_a_read(set(names), second)
    finally:
        second.stop()
    assert lost.after["count"] >= 3  # the three changes, and the requests around them
    assert "by its size or age limit or a purge" in lost.message
    assert lost.job_id is not None and f"Job #{lost.job_id} reads every stream" in lost.message
    assert_the_three_changes_recorded(names, found)
    assert Stream.objects.get(profile=profile, name=names[1]).sync == "missing"
    assert AuditEvent.objects.filter(action=ACTION).count() == 4  # marker's and these


def test_a_deleted_capture_stream_is_reported_and_every_stream_read_again(
    client_alice: Client, profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    drop_capture_stream(server)
    assert keep_advisories(profile).status == JobStatus.SUCCEEDED
    names = three_defined_streams(client_alice, profile, "unread")
    first = Listener(tmp_path, "first")
    try:
        first.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.marker2", {"name": "marker2", "subjects": ["marker2"]})
        entry_for("marker2", first)
    finally:
        first.stop()

    three_changes_outside(server, names)
    drop_capture_stream(server)

    second = Listener(tmp_path, "second")
    try:
        second.wait_following(profile.name)  # the live advisories, until it is made again
        lost = lost_entry(second)
        found = changes_found_by_a_read(set(names), second)
    finally:
        second.stop()
    assert lost.after["count"] is None
    assert lost.message.startswith("The capture stream was deleted after the listener "
                                   "recorded it up to sequence ")
    assert_the_three_changes_recorded(names, found)
    assert AuditEvent.objects.filter(action=outside.LOST_ACTION).count() == 1


def test_a_capture_stream_made_later_is_read_from_then_on(
    client_alice: Client, profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    """Consent given before the stream could be made: live advisories meanwhile, then the
    capture stream once Check capture stream has made it."""
    drop_capture_stream(server)
    profile.keep_advisories = True
    profile.save()
    listener = Listener(tmp_path)
    try:
        listener.wait_following(profile.name)
        assert f"the capture stream {system_streams.CAPTURE_STREAM} is missing" in \
            listener.log_text()
        as_bob(server, "STREAM.CREATE.early", {"name": "early", "subjects": ["early"]})
        wait_for_entries(1, listener)

        job = run_post(client_alice, reverse("profile_capture", args=[profile.pk]), {})
        assert job.status == JobStatus.SUCCEEDED, job.error
        listener.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.later", {"name": "later", "subjects": ["later"]})
        found = wait_for_entries(2, listener)
    finally:
        listener.stop()
    assert [e.target_name for e in found] == ["early", "later"]


def test_the_same_advisory_delivered_twice_writes_one_entry(
    profile: Profile, server: NatsServer,
) -> None:
    async def advisory_of_a_change() -> bytes:
        nc = await nats.connect(server.url, user="dash", password="dash-pass")
        subscription = await nc.subscribe(advisories.API_AUDIT_SUBJECT)
        await nc.flush()
        as_bob(server, "STREAM.CREATE.twice", {"name": "twice", "subjects": ["twice"]})
        msg = await subscription.next_msg(timeout=5)
        await nc.close()
        return msg.data

    change = advisories.parse(in_thread(advisory_of_a_change()))
    assert change is not None and change.stream == "twice"
    current, now = as_bob(server, "STREAM.INFO.twice"), timezone.now()
    assert outside.record(profile.pk, change, current, now) is True
    assert outside.record(profile.pk, change, current, now) is False
    assert [e.target_name for e in entries()] == ["twice"]


def test_a_second_listener_waits_until_the_first_stops(
    profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    """One listener a deployment, by a lock in Redis: a second one started waits, and takes
    over when the first stops; each change is written once."""
    first = Listener(tmp_path, "one")
    second = None
    try:
        first.wait_following(profile.name)
        second = Listener(tmp_path, "two")
        assert "another advisory listener holds the lock" in second.log_text()
        as_bob(server, "STREAM.CREATE.first", {"name": "first", "subjects": ["first"]})
        wait_for_entries(1, first)
        time.sleep(1)  # the second had its chances to take the lock meanwhile
        assert "advisory listener started" not in second.log_text()
        first.stop()
        second.wait_following(profile.name)
        as_bob(server, "STREAM.CREATE.second", {"name": "second", "subjects": ["second"]})
        found = wait_for_entries(2, second)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert [entry.target_name for entry in found] == ["first", "second"]


# Memphis, the capture stream's page, and the listener's resilience: one server version suffices.


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer.start(tmp_path / "nats", config=USERS)
    yield server
    server.stop()


def test_memphis_system_streams_are_ignored(
    make_profile: Callable[..., Profile], tmp_path: Path,
) -> None:
    server = NatsServer.start(tmp_path / "memphis", config='authorization { token: "root::abc" }')
    try:
        profile = make_profile(server, broker_kind="memphis", auth_method="memphis_token",
                               username="root", token="abc", record_outside=True)
        listener = Listener(tmp_path)
        try:
            listener.wait_following(profile.name)
            for name in ("$memphis_station_x", "orders"):
                answer = api(server.url, f"STREAM.CREATE.{name}",
                             {"name": name, "subjects": [name.strip("$")]}, token="root::abc")
                assert "error" not in answer, answer
            [entry] = wait_for_entries(1, listener)
        finally:
            listener.stop()
    finally:
        server.stop()
    assert entry.target_name == "orders" and entry.actor_name.startswith("nats:")


def test_keeping_advisories_is_asked_for_and_the_capture_stream_shown(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    profile = make_profile(own_server, auth_method="user_password", username="dash",
                           password="dash-pass")
    edit = reverse("profile_edit", args=[profile.pk])
    form = client_alice.get(edit).content.decode()
    assert "Record changes made outside" in form and "I agree that this dashboard creates a " \
        f"stream named {system_streams.CAPTURE_STREAM} on this broker" in form

    def save(**ticked: str) -> Any:
        profile.refresh_from_db()
        return client_alice.post(edit, {
            "name": profile.name, "broker_kind": "nats", "servers": own_server.url,
            "connect_timeout": "2", "auth_method": "user_password", "username": "dash",
            "loaded_at": profile.updated_at.isoformat(), **ticked})

    refused = save(keep_advisories="on").content.decode()
    assert "Only with Record changes made outside" in refused
    assert not Job.objects.filter(kind=JobKind.ADVISORY_CAPTURE).exists()

    assert save(record_outside="on", keep_advisories="on").status_code == 302
    changed = AuditEvent.objects.filter(action="profile.changed").latest("seq")
    assert changed.changes == {"keep_advisories": [False, True], "record_outside": [False, True]}
    job = wait_for_job(Job.objects.get(kind=JobKind.ADVISORY_CAPTURE).pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    live = as_bob(own_server, f"STREAM.INFO.{system_streams.CAPTURE_STREAM}")["config"]
    assert live["subjects"] == ["$JS.EVENT.ADVISORY.API"] and live["retention"] == "limits"
    assert live["max_bytes"] == 8 << 20 and live["max_age"] == 7 * 24 * 3600 * NS
    page = client_alice.get(reverse("profile_detail", args=[profile.pk])).content.decode()
    profile.refresh_from_db()
    assert profile.last_capture_bytes is not None
    assert f'<span class="mono">{system_streams.CAPTURE_STREAM}</span>:' in page
    assert "of 8.0\xa0MB, advisories kept up to 7 days" in page
    row = Stream.objects.get(profile=profile, name=system_streams.CAPTURE_STREAM)
    assert row.system_kind == "capture"  # read-only here, hidden from the list by default

    assert save(record_outside="on").status_code == 302  # consent withdrawn
    removal = wait_for_job(Job.objects.filter(kind=JobKind.ADVISORY_CAPTURE).latest("pk").pk)
    assert removal.status == JobStatus.SUCCEEDED, removal.error
    gone = api(own_server.url.replace("nats://", "nats://bob:bob-pass@"),
               f"STREAM.INFO.{system_streams.CAPTURE_STREAM}")
    assert gone["error"]["err_code"] == 10059
    assert AuditEvent.objects.filter(action="stream.deleted",
                                     target_name=system_streams.CAPTURE_STREAM).exists()


def test_the_profile_page_says_when_the_account_cannot_keep_the_capture_stream(
    client_alice: Client, make_profile: Callable[..., Profile], tmp_path: Path,
) -> None:
    server = NatsServer.start(tmp_path / "nats", config=(
        "accounts: { LIMITED: { jetstream: { max_streams: 1 }, "
        'users: [{user: lim, password: "lim-pass"}] } }'))
    try:
        answer = api(server.url.replace("nats://", "nats://lim:lim-pass@"),
                     "STREAM.CREATE.only", {"name": "only", "subjects": ["only"]})
        assert "error" not in answer, answer
        profile = make_profile(server, auth_method="user_password", username="lim",
                               password="lim-pass", record_outside=True)
        job = keep_advisories(profile)
    finally:
        server.stop()
    assert job.status == JobStatus.FAILED
    page = client_alice.get(reverse("profile_detail", args=[profile.pk])).content.decode()
    assert "not kept, the broker refused it or did not answer: maximum number of streams " \
           "reached (error 10027)." in page
    assert "Until it is kept, changes are recorded only while the listener runs." in page


def advisory(stream: str, operation: str = "UPDATE", *, response: dict[str, Any] | None = None,
             **fields: Any) -> bytes:
    """An api_audit advisory as a server would send it, its fields replaced by `fields`."""
    if response is None:
        response = ({"success": True} if operation == "DELETE" else
                    {"config": {"name": stream, "subjects": [stream]}})
    return json.dumps({
        "type": advisories.API_AUDIT_TYPE, "id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(), "client": {"acc": "$G"},
        "subject": f"$JS.API.STREAM.{operation}.{stream}", "request": "",
        "response": json.dumps(response), **fields}).encode()


def publish_as_bob(server: NatsServer, *advisories_sent: bytes) -> None:
    """Anyone allowed to publish on $JS.EVENT.> can do this."""
    async def go() -> None:
        nc = await nats.connect(server.url, user="bob", password="bob-pass")
        for data in advisories_sent:
            await nc.publish(advisories.API_AUDIT_SUBJECT, data)
        await nc.close()

    in_thread(go())


def test_a_forged_advisory_changes_nothing_but_adds_its_line(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
    tmp_path: Path,
) -> None:
    """The advisory says "look", the server says what is."""
    profile = make_profile(own_server, auth_method="user_password", username="dash",
                           password="dash-pass", record_outside=True)
    assert create_stream(client_alice, profile, name="real",
                         subjects="real").status == JobStatus.SUCCEEDED
    listener = Listener(tmp_path)
    try:
        listener.wait_following(profile.name)
        publish_as_bob(
            own_server, advisory("real", "DELETE"),
            advisory("real", response={"config": {"name": "phantom", "subjects": ["p"]}}),
            advisory("real", timestamp="2099-01-01T00:00:00Z"),
            advisory("real", request=json.dumps({"description": "x" * (900 << 10)})),
            advisory("real", request=json.dumps({"description": "half a pair: \ud800"})))
        found = wait_for_entries(4, listener)
    finally:
        listener.stop()
    deleted, dated, large, half = found
    assert deleted.message.startswith("deleted outside the dashboard by unknown user")
    assert deleted.message.endswith("; the server still has it; its definition here remains")
    row = Stream.objects.get(profile=profile, name="real")
    assert row.status == "ok" and row.read_at <= timezone.now()
    assert not Stream.objects.filter(name="phantom").exists()
    [rejected] = AuditEvent.objects.filter(action=REJECTED)
    assert "names another stream" in rejected.after["reason"] and rejected.outcome == "failed"
    assert datetime.fromisoformat(dated.after["advisory"]["at"]) <= timezone.now()
    asked = large.after["advisory"]
    assert asked["request_truncated"] is True
    assert len(asked["request"].encode()) == advisories.REQUEST_KEPT
    assert len(json.dumps(large.after)) < 20 << 10
    assert half.after["advisory"]["request"]["description"].startswith("half a pair: \ufffd")


def test_a_flood_of_malformed_advisories_blocks_nothing_and_fills_no_log(
    profile: Profile, server: NatsServer, tmp_path: Path,
) -> None:
    drop_capture_stream(server)
    assert keep_advisories(profile).status == JobStatus.SUCCEEDED
    capture, durable = system_streams.CAPTURE_STREAM, advisories.DURABLE
    # The consumer as the first listener made it: every advisory redelivered for ever.
    as_bob(server, f"CONSUMER.DURABLE.CREATE.{capture}.{durable}", {
        "stream_name": capture, "config": {
            "durable_name": durable, "ack_policy": "explicit", "deliver_policy": "all",
            "ack_wait": 30 * NS, "max_ack_pending": 1000}})
    publish_as_bob(server, *(advisory(f"bad{index}", response={"config": {
        "name": f"bad{index}", "subjects": 5}}) for index in range(1000)))

    listener = Listener(tmp_path)
    try:
        listener.wait_following(profile.name, "capture stream")
        as_bob(server, "STREAM.CREATE.after_flood", {"name": "after_flood",
                                                     "subjects": ["after_flood"]})
        [entry] = wait_for_entries(1, listener)
        consumer = as_bob(server, f"CONSUMER.INFO.{capture}.{durable}")
    finally:
        listener.stop()
    assert entry.target_name == "after_flood"
    assert consumer["config"]["max_deliver"] == advisories.MAX_DELIVER
    [rejected] = AuditEvent.objects.filter(action=REJECTED)
    assert rejected.after == {"count": 1, "reason": "a malformed advisory: its response's "
                              "'subjects': Expected a list."}
    log = listener.log_text()
    assert "Traceback" not in log and len(log) < 10_000, log[-3000:]


def test_a_change_that_cannot_be_recorded_is_rejected_after_its_last_delivery(
    make_profile: Callable[..., Profile], tmp_path: Path,
) -> None:
    """The dashboard's user may not read one stream back: each delivery of its change fails
    (the read times out), MAX_DELIVER times, logged in full once, then it is let go."""
    server = NatsServer.start(tmp_path / "nats", config=(
        'authorization { users: [{user: dash, password: "dash-pass", permissions: {publish: '
        '{deny: ["$JS.API.STREAM.INFO.hidden"]}}}, {user: bob, password: "bob-pass"}] }'))
    try:
        profile = make_profile(server, auth_method="user_password", username="dash",
                               password="dash-pass", record_outside=True)
        assert keep_advisories(profile).status == JobStatus.SUCCEEDED
        listener = Listener(tmp_path)
        try:
            listener.wait_following(profile.name, "capture stream")
            as_bob(server, "STREAM.CREATE.hidden", {"name": "hidden", "subjects": ["hidden"]})

            def rejected() -> AuditEvent | None:
                listener.check_alive()
                return AuditEvent.objects.filter(action=REJECTED).first()

            entry = wait_until(rejected, 90, listener.log_tail)
            as_bob(server, "STREAM.CREATE.seen", {"name": "seen", "subjects": ["seen"]})
            [recorded] = wait_for_entries(1, listener)
            consumer = as_bob(server, f"CONSUMER.INFO.{system_streams.CAPTURE_STREAM}."
                                      f"{advisories.DURABLE}")
        finally:
            listener.stop()
    finally:
        server.stop()
    assert recorded.target_name == "seen"
    assert entry.after["count"] == 1 and entry.after["reason"].endswith(
        f"(hidden created) could not be recorded in {advisories.MAX_DELIVER} attempts: "
        "TimeoutError: nats: timeout")
    assert consumer["num_ack_pending"] == 0 and consumer["num_redelivered"] == 0
    # One traceback, not one a delivery.
    assert listener.log_text().count("nats.errors.TimeoutError: nats: timeout") == 1


def test_the_listener_survives_bad_messages_and_a_server_restart(
    make_profile: Callable[..., Profile], own_server: NatsServer, tmp_path: Path,
) -> None:
    profile = make_profile(own_server, auth_method="user_password", username="dash",
                           password="dash-pass", record_outside=True)
    listener = Listener(tmp_path)
    try:
        listener.wait_following(profile.name)

        async def publish_garbage() -> None:
            nc = await nats.connect(own_server.url, user="bob", password="bob-pass")
            for data in (b"not json", b"[]", b'{"type": "io.nats.jetstream.advisory.v1.'
                         b'api_audit", "subject": 5}', b'{"type": "io.nats.jetstream.advisory.'
                         b'v1.api_audit", "subject": "$JS.API.STREAM.CREATE.x", "response": '
                         b'"{", "id": "x", "timestamp": "now"}'):
                await nc.publish(advisories.API_AUDIT_SUBJECT, data)
            await nc.close()

        in_thread(publish_garbage())
        as_bob(own_server, "STREAM.CREATE.after_garbage", {"name": "after_garbage",
                                                            "subjects": ["after_garbage"]})
        wait_for_entries(1, listener)

        own_server.restart()
        listener.wait_following(profile.name, times=2)  # it connected again on its own
        as_bob(own_server, "STREAM.CREATE.after_restart", {"name": "after_restart",
                                                            "subjects": ["after_restart"]})
        found = wait_for_entries(2, listener)
    finally:
        listener.stop()
    assert [e.target_name for e in found] == ["after_garbage", "after_restart"]


def test_the_listener_keeps_trying_an_unreachable_broker(
    make_profile: Callable[..., Profile], tmp_path: Path,
) -> None:
    """A profile whose broker is down is tried again and again, without a traceback."""
    make_profile(f"nats://127.0.0.1:{free_port()}", name="down", record_outside=True)
    listener = Listener(tmp_path)
    try:
        wait_until(lambda: listener.log_text().count("connection refused; trying again") >= 2,
                   20, listener.log_tail)
        listener.check_alive()
    finally:
        listener.stop()
    assert "Traceback" not in listener.log_text()
