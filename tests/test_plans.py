"""Plan and apply: what applying the definitions would do, stream by stream, before anything
runs (refused changes with the server's reason), then applying it as one job with per-stream
outcomes, progress, audit entries, and no deletion without the connection's name typed. On
real servers (2.15, and 2.9 where what the server fills in a config matters), changed from
separate connections as `nats stream edit` would."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from streams import audit
from streams.models import (
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Plan,
    Profile,
    Stream,
    StreamDefinition,
)
from streams.plans import steps as planning
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.plans import apply
from tests.support.proxies import BusyProxy, PacedProxy
from tests.support.raw_jetstream import api, create_raw, live_config, publish
from tests.support.stream_forms import create_stream, refresh_list
from tests.support.teams import logged_in, member
from tests.support.versions import DEBIAN_NATS_SERVER, VERSIONS, both_versions
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NatsServer]:
    """A server of the test's own: deleting "every stream without a definition" must not
    reach the streams of other tests. 2.15, or the version a test parametrizes it with."""
    binary = DEBIAN_NATS_SERVER if getattr(request, "param", "2.15") == "2.9" else None
    server = NatsServer.start(tmp_path / "nats", name="memphisadmin-plan-delete", binary=binary)
    yield server
    server.stop()


def planned(client: Client, url: str, data: dict[str, Any]) -> Plan:
    """POST a plan request; the plan once its job has worked out the steps."""
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content.decode()[:2000]
    plan = Plan.objects.get(pk=int(response["HX-Redirect"].rstrip("/").rsplit("/", 1)[1]))
    job = wait_for_job(plan.plan_job_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    plan.refresh_from_db()
    return plan


def plan_streams(client: Client, profile: Profile, scope: str, **data: Any) -> Plan:
    return planned(client, reverse("plan_create", args=[profile.pk]), {"scope": scope, **data})


def step(plan: Plan, name: str) -> planning.Step:
    return next(step for step in plan.steps or [] if step["name"] == name)


def define(profile: Profile, config: dict[str, Any]) -> None:
    StreamDefinition.objects.create(profile=profile, name=config["name"], config=config)


@both_versions
def test_a_plan_lists_exactly_the_drifted_fields(
    client_alice: Client, profile: Profile, server: NatsServer,
) -> None:
    job = create_stream(client_alice, profile, name="plan_drift", subjects="plan.drift",
                        max_age="1h")
    assert job.status == JobStatus.SUCCEEDED, job.error
    api(server.url, "STREAM.UPDATE.plan_drift", {
        **live_config(server.url, "plan_drift"), "max_msgs": 500, "description": "by hand"})
    refresh_list(client_alice, profile)
    plan = planned(client_alice, reverse("stream_plan", args=[profile.pk, "plan_drift"]), {})
    assert plan.origin == "restore the definition of plan_drift"
    assert [(s["name"], s["action"], s["changes"], s["refused"]) for s in plan.steps] == [
        ("plan_drift", "update", {"max_msgs": [500, -1], "description": ["by hand", None]}, {})]
    page = client_alice.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert "Stream Messages Limit" in page and "Description" in page
    assert "Message TTL" not in page  # defined and live alike: no row
    assert "1 to update" in page


@both_versions
def test_refused_changes_show_their_reason_and_are_not_applied(
    client_alice: Client, profile: Profile, server: NatsServer,
) -> None:
    url = server.url
    for name, retention in (("ref_storage", "limits"), ("ref_replicas", "limits"),
                            ("ref_workqueue", "workqueue"), ("ref_fine", "limits")):
        create_raw(url, {"name": name, "subjects": [f"{name}.>"], "retention": retention})
    define(profile, {**live_config(url, "ref_storage"), "storage": "memory"})
    define(profile, {**live_config(url, "ref_replicas"), "num_replicas": 3})
    define(profile, {**live_config(url, "ref_workqueue"), "retention": "limits"})
    define(profile, {**live_config(url, "ref_fine"), "max_msgs": 9})
    define(profile, {"name": "ref_new_r3", "subjects": ["ref_new.>"], "num_replicas": 3})
    plan = plan_streams(client_alice, profile, "profile")
    refused = {s["name"]: s["refused"] for s in plan.steps}
    assert refused["ref_storage"] == {"storage": "Storage is chosen at creation."}
    assert "needs a cluster" in refused["ref_replicas"]["num_replicas"]
    assert "needs a cluster" in refused["ref_new_r3"]["num_replicas"]
    assert set(refused["ref_workqueue"]) == {"retention"}
    assert refused["ref_fine"] == {}
    page = client_alice.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert "Storage is chosen at creation." in page and "4 refused" in page

    plan = apply(client_alice, plan)
    assert plan.outcomes == {"ref_fine": {"outcome": "updated", "message": "",
                                          "err_code": None}}
    assert live_config(url, "ref_storage")["storage"] == "file"
    assert live_config(url, "ref_replicas")["num_replicas"] == 1
    assert live_config(url, "ref_workqueue")["retention"] == "workqueue"
    assert api(url, "STREAM.INFO.ref_new_r3")["error"]["err_code"] == 10059
    assert live_config(url, "ref_fine")["max_msgs"] == 9


@both_versions
def test_apply_restores_a_stream_changed_outside_and_recreates_one_deleted_outside(
    client_alice: Client, profile: Profile, server: NatsServer,
) -> None:
    url = server.url
    for name in ("restore_edited", "restore_deleted"):
        job = create_stream(client_alice, profile, name=name, subjects=f"{name}.>",
                            max_msgs="100")
        assert job.status == JobStatus.SUCCEEDED, job.error
    defined = {name: StreamDefinition.objects.get(profile=profile, name=name).config
               for name in ("restore_edited", "restore_deleted")}
    api(url, "STREAM.UPDATE.restore_edited", {**live_config(url, "restore_edited"),
                                              "max_msgs": 7})
    api(url, "STREAM.DELETE.restore_deleted")
    refresh_list(client_alice, profile)
    assert {s.name: s.sync for s in Stream.objects.filter(profile=profile, name__in=defined)
            } == {"restore_edited": "drifted", "restore_deleted": "missing"}
    plan = plan_streams(client_alice, profile, "matching", q="restore_", sync="managed")
    assert [(s["name"], s["action"], s["changes"]) for s in plan.steps] == [
        ("restore_deleted", "create", {}), ("restore_edited", "update", {"max_msgs": [7, 100]})]
    # Changed again after the plan, in a field the plan does not touch: apply leaves it.
    api(url, "STREAM.UPDATE.restore_edited", {**live_config(url, "restore_edited"),
                                              "max_bytes": 4096})

    plan = apply(client_alice, plan)
    assert {name: outcome["outcome"] for name, outcome in plan.outcomes.items()} == {
        "restore_deleted": "created", "restore_edited": "updated"}
    edited = live_config(url, "restore_edited")
    assert (edited["max_msgs"], edited["max_bytes"]) == (100, 4096)
    assert live_config(url, "restore_deleted")["max_msgs"] == 100
    assert StreamDefinition.objects.get(profile=profile, name="restore_edited").config == edited
    assert StreamDefinition.objects.get(profile=profile, name="restore_deleted").config == \
        live_config(url, "restore_deleted")
    assert defined["restore_deleted"]["subjects"] == ["restore_deleted.>"]
    rows = {s.name: s.sync for s in Stream.objects.filter(profile=profile, name__in=defined)}
    assert rows == {"restore_edited": "in_sync", "restore_deleted": "in_sync"}
    entries = AuditEvent.objects.filter(job_id=plan.apply_job_id).order_by("seq")
    assert sorted((e.action, e.target_name, e.outcome) for e in entries) == [
        ("job.finished", profile.name, "succeeded"),
        ("job.requested", profile.name, "requested"),
        ("stream.changed", "restore_edited", "succeeded"),
        ("stream.created", "restore_deleted", "succeeded")]
    changed = entries.get(action="stream.changed")
    assert changed.changes == {"max_msgs": [7, 100]}
    assert (changed.before["max_msgs"], changed.after["max_msgs"]) == (7, 100)
    assert entries.get(action="stream.created").actor_name == "alice"


@both_versions
def test_a_sources_options_changed_outside_are_planned_and_restored(
    client_alice: Client, profile: Profile, server: NatsServer,
) -> None:
    """A source's options are part of the definition: changed outside, the plan restores them
    (an edit form, which shows sources by name, keeps them; see test_streams)."""
    url = server.url
    create_raw(url, {"name": "src_origin", "subjects": ["src_origin.>"]})
    job = create_stream(client_alice, profile, name="src_copy", subjects="", sources="src_origin")
    assert job.status == JobStatus.SUCCEEDED, job.error
    live = live_config(url, "src_copy")
    api(url, "STREAM.UPDATE.src_copy", {**live, "sources": [
        {**live["sources"][0], "filter_subject": "src_origin.only"}]})
    refresh_list(client_alice, profile)
    assert set(Stream.objects.get(profile=profile, name="src_copy").drift) == {"sources"}
    plan = plan_streams(client_alice, profile, "matching", q="src_copy", sync="managed")
    assert [(s["name"], s["action"], list(s["changes"])) for s in plan.steps] == [
        ("src_copy", "update", ["sources"])]
    plan = apply(client_alice, plan)
    assert plan.outcomes["src_copy"]["outcome"] == "updated"
    assert not live_config(url, "src_copy")["sources"][0].get("filter_subject")
    assert Stream.objects.get(profile=profile, name="src_copy").sync == "in_sync"


def test_apply_of_many_reports_every_outcome_and_its_progress(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    profile = make_profile(own_server, last_server_version=own_server.version)
    StreamDefinition.objects.bulk_create(
        StreamDefinition(profile=profile, name=f"many_{n:03d}",
                         config={"name": f"many_{n:03d}", "subjects": [f"many.{n}"]})
        for n in range(300))
    plan = plan_streams(client_alice, profile, "profile")
    assert planning.counts(plan.steps)["create"] == 300
    seen: set[tuple[int, int]] = set()
    applying = threading.Event()

    def watch() -> None:
        """From before the apply is asked for: the worker may be done with it before the
        answer to the request (the plan's page, 300 rows) is drawn."""
        try:
            while not applying.is_set():
                row = Job.objects.filter(kind=JobKind.STREAM_APPLY, profile=profile).values(
                    "progress", "status").first()
                if row and row["progress"] and row["status"] == JobStatus.RUNNING:
                    seen.add((row["progress"]["done"], row["progress"]["total"]))
                time.sleep(0.002)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        response = client_alice.post(reverse("plan_apply", args=[plan.pk]),
                                     HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        plan.refresh_from_db()
        job = wait_for_job(plan.apply_job_id, timeout=120)
    finally:
        applying.set()
        watcher.join(10)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == {"done": 300, "total": 300}
    assert job.result == {"total": 300, "created": 300}
    assert any(done < 300 for done, _total in seen), seen  # written while it ran
    card = client_alice.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "300 of 300" in card and "300 created" in card
    plan.refresh_from_db()
    assert len(plan.outcomes) == 300
    assert {outcome["outcome"] for outcome in plan.outcomes.values()} == {"created"}
    assert AuditEvent.objects.filter(job_id=job.pk, action="stream.created").count() == 300
    assert api(own_server.url, "STREAM.NAMES", {"offset": 0})["total"] == 300


def test_a_stopped_apply_stops_between_streams_and_says_which_ran(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    """On a broker taking 20 ms a create (a slow disk, a long link) the apply's card shows how
    far it got, with an estimate and a Stop that a viewer may not press and an operator may;
    the creates under way finish, no other starts, and the job names what did not run."""
    with PacedProxy(own_server.port, "$JS.API.STREAM.CREATE.", every=0.02) as proxy:
        profile = make_profile(proxy.url, last_server_version=own_server.version)
        StreamDefinition.objects.bulk_create(
            StreamDefinition(profile=profile, name=f"slow_{n:03d}",
                             config={"name": f"slow_{n:03d}", "subjects": [f"slow.{n}"]})
            for n in range(200))
        plan = plan_streams(client_alice, profile, "profile")
        client_alice.post(reverse("plan_apply", args=[plan.pk]), HTTP_HX_REQUEST="true")
        plan.refresh_from_db()
        card_url = reverse("job_detail", args=[plan.apply_job_id])
        stop_url = reverse("job_cancel", args=[plan.apply_job_id])
        operator = logged_in(member(profile.team, "operator", "operator"))
        viewer = logged_in(member(profile.team, "viewer", "viewer"))

        def card_midway() -> str:
            progress = Job.objects.get(pk=plan.apply_job_id).progress
            if not progress or progress["done"] < 20:
                return ""
            return operator.get(card_url, HTTP_HX_REQUEST="true").content.decode()

        card = wait_until(card_midway, 30, "the apply made no progress")
        assert re.search(r'<progress max="200" value="\d+"', card), card
        assert re.search(r"\d+ of 200 · <span class=\"estimate\">about \d+ s left", card), card
        assert "Stop after the streams under way" in card
        assert "Stop after" not in viewer.get(card_url, HTTP_HX_REQUEST="true").content.decode()
        assert viewer.post(stop_url, HTTP_HX_REQUEST="true").status_code == 403
        assert not Job.objects.get(pk=plan.apply_job_id).cancel_requested
        stopping = operator.post(stop_url, HTTP_HX_REQUEST="true")
        assert "Stopping: the streams under way finish" in stopping.content.decode()
        job = wait_for_job(plan.apply_job_id, timeout=60)
    plan.refresh_from_db()
    ran = sorted(name for name, outcome in plan.outcomes.items()
                 if outcome["outcome"] == "created")
    not_run = sorted(name for name, outcome in plan.outcomes.items()
                     if outcome["outcome"] == "not run")
    assert len(ran) + len(not_run) == 200 and not_run, plan.outcomes
    assert job.status == JobStatus.FAILED
    assert job.error == (f"stopped on request after {len(ran)} of 200 streams ({len(ran)} "
                         f"created); not run: {', '.join(not_run[:5])} and {len(not_run) - 5} "
                         "more. Plan again to apply the rest."), job.error
    assert sorted(api(own_server.url, "STREAM.NAMES", {"offset": 0})["streams"] or []) == ran
    assert AuditEvent.objects.filter(job=job, action="stream.created").count() == len(ran)
    stop = AuditEvent.objects.get(job=job, action="job.cancel_requested")
    assert (stop.actor_name, stop.outcome) == ("operator", "requested")
    assert AuditEvent.objects.get(job=job, action="job.finished").message == job.error
    page = client_alice.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert page.count(">not run</span>") == len(not_run)


def test_no_stream_is_deleted_without_the_typed_confirmation(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    url = own_server.url
    profile = make_profile(own_server, name="production", last_server_version=own_server.version)
    for name in ("kept", "stray", "stray_denied", "KV_bucket"):
        create_raw(url, {"name": name, "subjects": [f"{name}.>"],
                         "deny_purge": name == "stray_denied"})
    define(profile, live_config(url, "kept"))
    plan_url = reverse("plan_create", args=[profile.pk])
    for typed in ("", "Production", "prod"):
        response = client_alice.post(plan_url, {"scope": "profile", "delete_missing": "on",
                                                "confirm_profile": typed},
                                     HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert "Deleting streams needs production typed exactly." in response.content.decode()
    assert not Plan.objects.exists()

    plan = plan_streams(client_alice, profile, "profile", delete_missing="on",
                        confirm_profile="production")
    assert [(s["name"], s["action"], bool(s["refused"])) for s in plan.steps] == [
        ("kept", "unchanged", False), ("stray", "delete", False),
        ("stray_denied", "delete", True)]
    assert "denies purging" in step(plan, "stray_denied")["refused"]["name"]
    # Applying asks again, whoever proposed the plan.
    response = client_alice.post(reverse("plan_apply", args=[plan.pk]), {},
                                 HTTP_HX_REQUEST="true")
    assert "Deleting streams needs production typed exactly." in response.content.decode()
    plan.refresh_from_db()
    assert plan.apply_job_id is None

    plan = apply(client_alice, plan, confirm_profile="production")
    assert plan.outcomes == {"stray": {"outcome": "deleted", "message": "", "err_code": None}}
    names = set(api(url, "STREAM.NAMES", {"offset": 0})["streams"])
    assert names == {"kept", "stray_denied", "KV_bucket"}
    deleted = AuditEvent.objects.get(job_id=plan.apply_job_id, action="stream.deleted")
    assert (deleted.target_name, deleted.before["name"]) == ("stray", "stray")


@pytest.mark.parametrize("own_server", list(VERSIONS), indirect=True)
def test_a_deletion_runs_only_on_the_stream_the_plan_saw(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    """A stream made again (even with the same config), changed (a key added counts) or
    written to since the plan is not the one whose deletion was confirmed: someone else's
    stream, and its messages, survive an old plan. On 2.9 too, whose configs have fewer keys."""
    server = own_server
    url = server.url
    profile = make_profile(server, name="production", last_server_version=server.version)
    names = ("described", "remade", "remade_same", "stray", "written")
    for name in names:
        create_raw(url, {"name": name, "subjects": [f"{name}.>"]})
    plan = plan_streams(client_alice, profile, "profile", delete_missing="on",
                        confirm_profile="production")
    assert [(s["name"], s["action"]) for s in plan.steps] == [(name, "delete") for name in names]
    described = live_config(url, "described")
    api(url, "STREAM.UPDATE.described", {**described, "description": "in use again"})
    api(url, "STREAM.DELETE.remade")
    create_raw(url, {"name": "remade", "subjects": ["someone.else.>"], "max_msgs": 10})
    same = live_config(url, "remade_same")
    api(url, "STREAM.DELETE.remade_same")
    create_raw(url, same)
    publish(url, [("remade_same.new", b"theirs"), ("written.new", b"theirs")])

    plan = apply(client_alice, plan, confirm_profile="production")
    assert plan.outcomes["stray"]["outcome"] == "deleted"
    stale = "since the plan was made: plan again"
    assert {name: outcome["message"] for name, outcome in plan.outcomes.items()
            if outcome["outcome"] == "failed"} == {
        "described": f"described was changed (Description) {stale}",
        "remade": f"remade was deleted and made again {stale}",
        "remade_same": f"remade_same was deleted and made again {stale}",
        "written": f"written was given 1 new message {stale}"}
    assert set(api(url, "STREAM.NAMES", {"offset": 0})["streams"]) == set(names) - {"stray"}
    for name in ("remade_same", "written"):
        assert api(url, f"STREAM.INFO.{name}")["state"]["messages"] == 1


@both_versions
def test_an_update_runs_only_on_the_stream_the_plan_saw(
    client_alice: Client, profile: Profile,
) -> None:
    """Restoring a definition onto a stream made again under its name since the plan would
    change someone else's stream."""
    url = profile.server_list[0]
    create_raw(url, {"name": "remade_update", "subjects": ["remade_update.>"]})
    define(profile, {**live_config(url, "remade_update"), "max_msgs": 10})
    refresh_list(client_alice, profile)
    plan = plan_streams(client_alice, profile, "matching", q="remade_update", sync="managed")
    assert [(s["name"], s["action"]) for s in plan.steps] == [("remade_update", "update")]
    config = live_config(url, "remade_update")
    api(url, "STREAM.DELETE.remade_update")
    create_raw(url, config)

    plan = apply(client_alice, plan)
    assert plan.outcomes["remade_update"]["message"] == (
        "remade_update was deleted and made again since the plan was made: plan again")
    assert live_config(url, "remade_update")["max_msgs"] == -1


def test_a_stream_adopted_since_the_plan_is_not_deleted_by_it(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    """The plan deletes what has no definition; a stream adopted meanwhile has one."""
    url = own_server.url
    profile = make_profile(own_server, name="production", last_server_version=own_server.version)
    for name in ("stray", "adopted"):
        create_raw(url, {"name": name, "subjects": [f"{name}.>"]})
    plan = plan_streams(client_alice, profile, "profile", delete_missing="on",
                        confirm_profile="production")
    refresh_list(client_alice, profile)
    response = client_alice.post(reverse("stream_adopt", args=[profile.pk]), {"name": "adopted"},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    wait_until(lambda: StreamDefinition.objects.filter(profile=profile, name="adopted").exists(),
               30, "the stream was not adopted")

    plan = apply(client_alice, plan, confirm_profile="production")
    assert plan.outcomes["stray"]["outcome"] == "deleted"
    assert plan.outcomes["adopted"]["outcome"] == "failed"
    assert set(api(url, "STREAM.NAMES", {"offset": 0})["streams"]) == {"adopted"}
    assert StreamDefinition.objects.filter(profile=profile, name="adopted").exists()
    refused = AuditEvent.objects.get(job_id=plan.apply_job_id, target_name="adopted")
    assert (refused.action, refused.outcome) == ("stream.deleted", "failed")
    assert "given a definition since the plan was made" in refused.message


def test_a_proposed_plan_deletes_nothing_unless_the_apply_is_confirmed(
    client_alice: Client, user: Any, make_profile: Callable[..., Profile],
    own_server: NatsServer,
) -> None:
    """The entry point other features plan through: its deletions wait for the typed name."""
    url = own_server.url
    profile = make_profile(own_server, name="staging", last_server_version=own_server.version)
    create_raw(url, {"name": "old_one", "subjects": ["old.>"]})
    plan = Plan.objects.propose(profile, {"new_one": {"name": "new_one", "subjects": ["new.>"]}},
                                origin="import", context=audit.Context(actor=user),
                                delete_missing=True)
    assert wait_for_job(plan.plan_job_id).status == JobStatus.SUCCEEDED
    plan.refresh_from_db()
    assert [(s["name"], s["action"]) for s in plan.steps] == [("new_one", "create"),
                                                             ("old_one", "delete")]
    response = client_alice.post(reverse("plan_apply", args=[plan.pk]),
                                 {"confirm_profile": "nope"}, HTTP_HX_REQUEST="true")
    assert "typed exactly" in response.content.decode()
    assert set(api(url, "STREAM.NAMES", {"offset": 0})["streams"]) == {"old_one"}


def test_apply_backs_off_while_the_server_says_it_is_busy(
    client_alice: Client, make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    """503 / 10008 ("temporarily unavailable") answers are retried with backoff; the outcome
    of each stream is as if the server had never been busy."""
    with BusyProxy(own_server.port, "$JS.API.STREAM.CREATE.", times=40) as proxy:
        profile = make_profile(proxy.url, last_server_version=own_server.version)
        for n in range(30):
            define(profile, {"name": f"busy_{n:02d}", "subjects": [f"busy.{n}"]})
        plan = plan_streams(client_alice, profile, "profile")
        plan = apply(client_alice, plan)
    assert len(proxy.answered) == 40
    assert {outcome["outcome"] for outcome in plan.outcomes.values()} == {"created"}
    assert len(api(own_server.url, "STREAM.NAMES", {"offset": 0})["streams"]) == 30


def test_bad_plan_requests_are_refused_without_a_server_error(
    client_alice: Client, profile: Profile, server: NatsServer,
) -> None:
    plan_url = reverse("plan_create", args=[profile.pk])
    for data in ({}, {"scope": "bogus"}, {"scope": "ticked", "name": ["nope"]},
                 {"scope": "matching", "sort": "\x00", "q": "x" * 5000},
                 {"scope": "ticked", "delete_missing": "on", "confirm_profile": profile.name}):
        response = client_alice.post(plan_url, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not Plan.objects.exists()
    assert client_alice.post(reverse("stream_plan", args=[profile.pk, "undefined"])
                             ).status_code == 404
    assert client_alice.get(reverse("plan_detail", args=[10**9])).status_code == 404
    assert client_alice.get(reverse("plan_apply", args=[1])).status_code == 405

    unplanned = Plan.objects.create(profile=profile, origin="import", desired={})
    response = client_alice.post(reverse("plan_apply", args=[unplanned.pk]),
                                 HTTP_HX_REQUEST="true")
    assert "still being worked out" in response.content.decode()
    unplanned.plan_job = Job.objects.create(kind=JobKind.STREAM_PLAN, profile=profile,
                                            profile_name=profile.name, status=JobStatus.FAILED,
                                            error="no server is available")
    unplanned.save()
    response = client_alice.post(reverse("plan_apply", args=[unplanned.pk]),
                                 HTTP_HX_REQUEST="true")
    assert "Working out this plan failed (no server is available): plan again" in \
        response.content.decode()
    define(profile, {"name": "twice", "subjects": ["twice.>"]})
    plan = apply(client_alice, plan_streams(client_alice, profile, "ticked", name="twice"))
    response = client_alice.post(reverse("plan_apply", args=[plan.pk]), HTTP_HX_REQUEST="true")
    assert "applied already" in response.content.decode()
    assert Plan.objects.get(pk=plan.pk).apply_job_id == plan.apply_job_id
    api(server.url, "STREAM.DELETE.twice")


def test_a_plan_whose_server_is_unreachable_says_why_and_reads_no_more(
    client_alice: Client, user: Any, make_profile: Callable[..., Profile],
) -> None:
    profile = make_profile("nats://127.0.0.1:1", name="production", connect_timeout=1)
    plan = Plan.objects.propose(profile, {"s": {"name": "s"}}, origin="import",
                                context=audit.Context(actor=user))
    job = wait_for_job(plan.plan_job_id)
    assert job.status == JobStatus.FAILED and job.error
    page = client_alice.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert job.error in page
    assert "Reading the live configurations" not in page


def test_an_apply_refused_without_htmx_shows_why_on_the_page(
    client_alice: Client, make_profile: Callable[..., Profile],
) -> None:
    """A form posted by the browser itself (no JavaScript) gets its errors too, not a
    redirect to the same page that says nothing."""
    profile = make_profile("nats://127.0.0.1:1", name="production")
    plan = Plan.objects.create(profile=profile, origin="import", desired={}, steps=[
        {"name": "doomed", "action": "delete", "changes": {}, "refused": {}}])
    response = client_alice.post(reverse("plan_apply", args=[plan.pk]),
                                 {"confirm_profile": "prod"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and "Deleting streams needs production typed exactly." in page
    assert Plan.objects.get(pk=plan.pk).apply_job_id is None


def test_a_plan_is_applied_only_by_an_operator(
    make_profile: Callable[..., Profile],
) -> None:
    profile = make_profile("nats://127.0.0.1:1", name="production")
    plan = Plan.objects.create(profile=profile, origin="import", desired={
        "new_one": {"name": "new_one"}}, steps=[
        {"name": "new_one", "action": "create", "changes": {}, "refused": {}}])
    viewer = logged_in(member(profile.team, "viewer", "viewer"))
    response = viewer.post(reverse("plan_apply", args=[plan.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert Plan.objects.get(pk=plan.pk).apply_job_id is None
    operator = logged_in(member(profile.team, "operator", "operator"))
    operator.post(reverse("plan_apply", args=[plan.pk]), HTTP_HX_REQUEST="true")
    assert Plan.objects.get(pk=plan.pk).apply_job_id is not None


def test_a_plan_request_refused_without_htmx_gets_the_list_with_why(
    client_alice: Client, make_profile: Callable[..., Profile],
) -> None:
    profile = make_profile("nats://127.0.0.1:1", name="production")
    response = client_alice.post(reverse("plan_create", args=[profile.pk]),
                                 {"scope": "profile", "delete_missing": "on"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and 'id="stream-table"' in page
    assert "Deleting streams needs production typed exactly." in page
    assert not Plan.objects.exists()


def test_planning_needs_an_operator_and_deleting_an_admin(
    make_profile: Callable[..., Profile], own_server: NatsServer,
) -> None:
    profile = make_profile(own_server, name="perms", last_server_version=own_server.version)
    create_raw(own_server.url, {"name": "unwanted", "subjects": ["unwanted.>"]})
    viewer = logged_in(member(profile.team, "viewer", "viewer"))
    response = viewer.post(reverse("plan_create", args=[profile.pk]),
                           {"scope": "profile", "delete_missing": "on",
                            "confirm_profile": "perms"})
    assert response.status_code == 403
    operator = logged_in(member(profile.team, "operator", "operator"))
    plan = plan_streams(operator, profile, "profile", delete_missing="on",
                        confirm_profile="perms")
    assert [(s["name"], s["action"]) for s in plan.steps] == [("unwanted", "delete")]
    response = operator.post(reverse("plan_apply", args=[plan.pk]),
                             {"confirm_profile": "perms"})
    assert response.status_code == 403
    assert Plan.objects.get(pk=plan.pk).apply_job_id is None
    assert api(own_server.url, "STREAM.NAMES", {"offset": 0})["streams"] == ["unwanted"]


def test_replicas_the_cluster_has_are_planned_and_applied(
    client_alice: Client, make_profile: Callable[..., Profile], cluster: list[NatsServer],
) -> None:
    profile = make_profile("\n".join(server.url for server in cluster), name="cluster-plan",
                           last_server_version=cluster[0].version)
    define(profile, {"name": "plan_r3", "subjects": ["plan_r3.>"], "num_replicas": 3})
    define(profile, {"name": "plan_r5", "subjects": ["plan_r5.>"], "num_replicas": 5})
    plan = plan_streams(client_alice, profile, "profile")
    assert step(plan, "plan_r3")["refused"] == {}
    assert "the cluster has 3" in step(plan, "plan_r5")["refused"]["num_replicas"]
    plan = apply(client_alice, plan, timeout=120)
    assert plan.outcomes["plan_r3"]["outcome"] == "created"
    assert live_config(cluster[0].url, "plan_r3")["num_replicas"] == 3
    assert "plan_r5" not in plan.outcomes


@both_versions
def test_what_the_server_fills_in_is_never_a_change(
    user: Any, profile: Profile, server: NatsServer,
) -> None:
    """A desired config that leaves defaults out (as an import does) against the server's
    full answer: nothing to do."""
    desired = {"name": "plan_defaults", "subjects": ["plan_defaults.>"], "max_msgs": -1,
               "max_age": 0, "duplicate_window": 120 * 10**9, "deny_delete": False}
    create_raw(server.url, {"name": "plan_defaults", "subjects": ["plan_defaults.>"]})
    plan = Plan.objects.propose(profile, {"plan_defaults": desired}, origin="import",
                                context=audit.Context(actor=user))
    assert wait_for_job(plan.plan_job_id).status == JobStatus.SUCCEEDED
    plan.refresh_from_db()
    assert plan.steps == [{"name": "plan_defaults", "action": "unchanged", "changes": {},
                           "refused": {}}]
    api(server.url, "STREAM.DELETE.plan_defaults")


@both_versions
def test_a_duplicate_window_left_out_is_the_one_the_server_fills_in(
    user: Any, profile: Profile, server: NatsServer,
) -> None:
    """Two minutes, or the max age when shorter: a hand-written file (or an import) that
    leaves it out asks for what the stream has."""
    desired = {"plan_window": {"name": "plan_window", "subjects": ["plan_window.>"]},
               "plan_short": {"name": "plan_short", "subjects": ["plan_short.>"],
                              "max_age": 30 * 10**9}}
    for config in desired.values():
        create_raw(server.url, config)
    plan = Plan.objects.propose(profile, desired, origin="import",
                                context=audit.Context(actor=user))
    assert wait_for_job(plan.plan_job_id).status == JobStatus.SUCCEEDED
    plan.refresh_from_db()
    assert [(s["name"], s["action"], s["changes"]) for s in plan.steps] == [
        ("plan_short", "unchanged", {}), ("plan_window", "unchanged", {})]
    for name in desired:
        api(server.url, f"STREAM.DELETE.{name}")


@both_versions
def test_subjects_left_out_are_the_streams_name_as_the_server_fills_in(
    user: Any, profile: Profile, server: NatsServer,
) -> None:
    create_raw(server.url, {"name": "plan_nosubj"})
    plan = Plan.objects.propose(profile, {"plan_nosubj": {"name": "plan_nosubj"}}, origin="import",
                                context=audit.Context(actor=user))
    assert wait_for_job(plan.plan_job_id).status == JobStatus.SUCCEEDED
    plan.refresh_from_db()
    assert [(s["action"], s["changes"]) for s in plan.steps] == [("unchanged", {})]
    api(server.url, "STREAM.DELETE.plan_nosubj")


def test_a_plan_page_read_as_its_job_ends_shows_the_steps_the_job_wrote(
    db: Any, profile: Profile,
) -> None:
    """The page reads the plan's job before the plan: a plan row read before the job ended,
    with the job read after, once left a page with no steps and a card that no longer polls."""
    from streams.views.plans import _plan_context

    job = Job.objects.create(kind=JobKind.STREAM_PLAN, profile=profile,
                             profile_name=profile.name, status=JobStatus.RUNNING)
    plan = Plan.objects.create(profile=profile, origin="definitions", desired={}, plan_job=job)
    read_before_the_end = Plan.objects.get(pk=plan.pk)
    step = {"name": "orders", "action": planning.CREATE, "config": {"name": "orders"},
            "changes": {}, "refused": {}}
    Plan.objects.filter(pk=plan.pk).update(steps=[step])  # the job's end, in one transaction
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    context = _plan_context(read_before_the_end)
    assert context["plan_card"]["job"].is_finished
    assert [row[0]["name"] for row in context["rows"]] == ["orders"]
