"""Stream management end to end: views enqueue jobs, the real worker talks to a real
nats-server, and the database holds the listing, the definitions and the audit trail."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest
from django.test import Client
from django.urls import reverse

from streams import stream_config
from streams.audit import Context
from streams.cli_values import NS
from streams.jobs.kinds import KINDS
from streams.models import (
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Profile,
    Stream,
    StreamDefinition,
)
from tests.support.jobs import job_from, wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.proxies import LostReplyProxy
from tests.support.raw_jetstream import api, create_raw, in_thread, live_config, publish
from tests.support.stream_forms import (
    SEED_FORM,
    create_stream,
    form_values,
    refresh_list,
    refresh_stream,
    reviewed_edit,
    run_post,
    shown_seen,
)
from tests.support.versions import both_versions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

LISTED = 600  # more than two STREAM.LIST pages of 256


def newer(profile: Profile, version: tuple[int, int, int]) -> bool:
    return stream_config.parse_version(profile.last_server_version) >= version


@pytest.fixture(scope="session")
def listing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server of its own, so the listing's counts are exact: 600 user streams, memory
    storage (quick to make), plus a key-value bucket, an object store and a Memphis stream."""
    server = NatsServer.start(tmp_path_factory.mktemp("nats-listing"))

    async def fill() -> None:
        nc = await nats.connect(server.url)
        names = [f"s{index:04d}" for index in range(LISTED)] + ["KV_cfg", "OBJ_files",
                                                                 "$memphis_dls"]
        for start in range(0, len(names), 100):
            await asyncio.gather(*(
                nc.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps({
                    "name": name, "subjects": [f"sub.{name.lower().lstrip('$')}"],
                    "storage": "memory"}).encode(), timeout=10)
                for name in names[start:start + 100]))
        await nc.close()

    try:
        in_thread(fill())  # Playwright may own this thread's event loop
        yield server
    finally:
        server.stop()


@both_versions
def test_create_form_asks_the_seed_questions_with_its_defaults(
    client_alice: Client, profile: Profile,
) -> None:
    html = client_alice.get(reverse("stream_create", args=[profile.pk])).content.decode()
    for label in stream_config.BASIC_FIELDS:
        assert f">{stream_config.LABELS[label]}:</label>" in html
    for name, value in (("max_msgs", "-1"), ("max_age", "-1"), ("duplicate_window", "2m0s"),
                        ("max_bytes", "-1")):
        assert f'name="{name}" value="{value}"' in html
    assert '<option value="file" selected>' in html
    assert '<option value="limits" selected>Limits</option>' in html
    assert '<option value="old" selected>Old</option>' in html
    assert '<option value="no" selected>No</option>' in html  # roll-ups
    assert 'id="replica-counts"><option value="1"></datalist>' in html  # single server
    # 2.15 offers the 2.10 and 2.11 options; 2.9 only its own.
    assert (stream_config.LABELS["allow_msg_ttl"] in html) is newer(profile, (2, 11, 0))
    assert (stream_config.LABELS["compression"] in html) is newer(profile, (2, 10, 0))
    assert stream_config.LABELS["allow_direct"] in html


@both_versions
def test_seed_stream_is_created_through_the_form(client_alice: Client, profile: Profile) -> None:
    job = create_stream(client_alice, profile)
    assert job.status == JobStatus.SUCCEEDED, job.error
    live = live_config(profile.server_list[0], "argo_event_source")
    assert live["subjects"] == ["foo"] and live["storage"] == "file"
    assert live["num_replicas"] == 1 and live["retention"] == "limits"
    assert live["duplicate_window"] == 120 * NS and live["max_age"] == 0
    assert live["deny_delete"] is False and live["deny_purge"] is False
    # The definition is the config the server answered with, its filled-in defaults included.
    definition = StreamDefinition.objects.get(profile=profile, name="argo_event_source")
    assert definition.config == live
    assert definition.config["duplicate_window"] == 120 * NS
    row = Stream.objects.get(profile=profile, name="argo_event_source")
    assert row.subjects == ["foo"] and row.messages == 0
    entry = AuditEvent.objects.get(action="stream.created", target_name="argo_event_source")
    assert entry.outcome == "succeeded" and entry.actor_name == "alice"
    assert entry.profile_name == profile.name and entry.after["subjects"] == ["foo"]
    # The form region, reloaded when the job ends, says what the CLI says.
    outcome = client_alice.get(reverse("stream_create", args=[profile.pk]),
                               {"job": job.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "Stream <a" in outcome and "argo_event_source</a> was created" in outcome
    # A create the server rejects for the name goes back to the name field.
    again = create_stream(client_alice, profile, subjects="other")
    assert again.status == JobStatus.FAILED and again.err_code == 10058
    outcome = client_alice.get(reverse("stream_create", args=[profile.pk]),
                               {"job": again.pk}, HTTP_HX_REQUEST="true").content.decode()
    row_html = outcome.split('id="row-name"')[1].split("</div>")[0]
    assert "10058" in row_html
    assert AuditEvent.objects.get(action="stream.created", job=again).outcome == "failed"


def test_values_are_normalised_and_validated_per_field(
    client_alice: Client, profile: Profile,
) -> None:
    url = reverse("stream_create", args=[profile.pk])
    row = client_alice.post(f"{url}?validate=max_bytes", {**SEED_FORM, "max_bytes": "1GB"},
                            HTTP_HX_REQUEST="true").content.decode()
    # The row alone, which validates itself again once left.
    assert row.strip().startswith(f'<div class="field-row" id="row-max_bytes" hx-post="{url}'
                                  '?validate=max_bytes" hx-trigger="change"')
    assert 'value="1GiB"' in row and "<form" not in row
    row = client_alice.post(f"{url}?validate=max_age", {**SEED_FORM, "max_age": "90m"},
                            HTTP_HX_REQUEST="true").content.decode()
    assert 'value="1h30m0s"' in row
    row = client_alice.post(f"{url}?validate=name", {**SEED_FORM, "name": "bad.name"},
                            HTTP_HX_REQUEST="true").content.decode()
    assert "Not allowed in a stream name: ." in row
    assert 'hx-trigger="input delay:400ms"' in row  # the name, as it is typed
    row = client_alice.post(f"{url}?validate=duplicate_window",
                            {**SEED_FORM, "max_age": "1m", "duplicate_window": "2m0s"},
                            HTTP_HX_REQUEST="true").content.decode()
    assert "Must not exceed the Message TTL (1m0s)" in row
    assert not Job.objects.exists()  # validation alone never reaches the broker


@pytest.mark.parametrize(("answers", "field", "message"), [
    ({"max_age": "1m"}, "duplicate_window", "Must not exceed the Message TTL"),
    ({"max_age": "50ms"}, "max_age", "At least 100ms"),
    ({"allow_rollup_hdrs": "yes", "allow_purge": "no"}, "allow_rollup_hdrs", "purging allowed"),
    ({"num_replicas": "7"}, "num_replicas", "less than or equal to 5"),
    ({"subjects": "foo..bar"}, "subjects", "empty token"),
    ({"duplicate_window": "2 minutes"}, "duplicate_window", "is not a duration"),
])
def test_invalid_answers_are_refused_beside_their_field(
    client_alice: Client, profile: Profile, answers: dict[str, str], field: str, message: str,
) -> None:
    response = client_alice.post(reverse("stream_create", args=[profile.pk]),
                                 {**SEED_FORM, "name": "invalid", **answers},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode().split(f'id="row-{field}"')[1].split("</div>")[0]
    assert message in row
    assert not Job.objects.exists()


def test_memphis_profiles_get_memphis_rules(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    memphis = make_profile(nats_server, broker_kind="memphis", last_server_version="2.9.10")
    response = client_alice.post(reverse("stream_create", args=[memphis.pk]),
                                 {**SEED_FORM, "name": "Argo", "retention": "workqueue"},
                                 HTTP_HX_REQUEST="true").content.decode()
    assert "Memphis stations are lowercase" in response
    assert "Memphis does not accept work-queue retention" in response
    # 2.9 offers no 2.10+ options.
    assert stream_config.LABELS["compression"] not in response
    assert stream_config.LABELS["allow_direct"] in response
    assert not Job.objects.exists()


@both_versions
def test_broker_errors_come_back_on_their_field(client_alice: Client, profile: Profile) -> None:
    create_raw(profile.server_list[0], {"name": "owner_of_bar", "subjects": ["bar.>"]})
    overlap = create_stream(client_alice, profile, name="overlaps", subjects="bar.x")
    assert overlap.err_code == 10065 and overlap.error_field == "subjects"
    assert overlap.attempts == 1  # permanent: not retried
    replicas = create_stream(client_alice, profile, name="too_many", subjects="tm",
                             num_replicas="3")
    assert replicas.err_code in {10074, 10005} and replicas.error_field == "num_replicas"
    html = client_alice.get(reverse("stream_create", args=[profile.pk]), {"job": replicas.pk},
                            HTTP_HX_REQUEST="true").content.decode()
    assert str(replicas.err_code) in html.split('id="row-num_replicas"')[1].split("</div>")[0]
    assert 'name="num_replicas" value="3"' in html  # the user's answers are kept


@both_versions
def test_invalid_config_errors_come_back_on_the_form(
    client_alice: Client, profile: Profile,
) -> None:
    job = create_stream(client_alice, profile, name="cyclic", subjects="rp",
                        republish_src="rp", republish_dest="rp")
    assert job.err_code == 10052 and job.error_field == ""
    html = client_alice.get(reverse("stream_create", args=[profile.pk]), {"job": job.pk},
                            HTTP_HX_REQUEST="true").content.decode()
    errors = html.split('<div class="errors" role="alert">')[1].split("</div>")[0]
    assert "republish destination forms a cycle (error 10052)" in errors


def test_listing_is_complete_and_stored(
    client_alice: Client, make_profile: Callable[..., Profile], listing_server: NatsServer,
) -> None:
    profile = make_profile(listing_server)
    job = refresh_list(client_alice, profile)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["total"] == LISTED + 3
    assert "streams" not in job.result  # the rows hold the listing, not the job
    assert Stream.objects.filter(profile=profile).count() == LISTED + 3
    assert Stream.objects.get(profile=profile, name="KV_cfg").system_kind == "kv"
    assert Stream.objects.get(profile=profile, name="$memphis_dls").system_kind == "memphis"
    profile.refresh_from_db()
    assert profile.last_server_version == listing_server.version
    url = reverse("stream_list", args=[profile.pk])
    html = client_alice.get(url).content.decode()
    assert f"{LISTED} streams · read " in html
    assert ("1 key-value bucket, 1 Memphis system stream and 1 object store hidden"
            in html)
    assert "KV_cfg" not in html and "page 1 of 12" in html
    html = client_alice.get(url, {"system": "1", "q": "cfg"}).content.decode()
    assert "KV_cfg" in html and "key-value" in html
    html = client_alice.get(url, {"subject": "sub.s0599"}, HTTP_HX_REQUEST="true").content
    assert b'data-name="s0599"' in html and b'data-name="s0598"' not in html
    html = client_alice.get(url, {"sort": "-name"}).content.decode()
    assert html.index('data-name="s0599"') < html.index('data-name="s0598"')
    html = client_alice.get(url, {"page": "12"}).content.decode()
    assert 'data-name="s0599"' in html
    # System streams are read-only here.
    memphis = client_alice.post(reverse("stream_delete", args=[profile.pk, "$memphis_dls"]),
                                {"confirm_name": "$memphis_dls"}).content.decode()
    assert "Memphis system stream, read-only here: it cannot be deleted." in memphis
    edit = client_alice.get(reverse("stream_edit", args=[profile.pk, "KV_cfg"]))
    assert edit.status_code == 403
    assert not Job.objects.filter(kind=JobKind.STREAM_DELETE).exists()
    # A stream deleted behind our back disappears at the next listing.
    api(listing_server.url, "STREAM.DELETE.s0000")
    refresh_list(client_alice, profile)
    assert not Stream.objects.filter(profile=profile, name="s0000").exists()
    create_raw(listing_server.url, {"name": "s0000", "subjects": ["sub.s0000"],
                                    "storage": "memory"})


def test_detail_shows_config_state_and_refreshes_through_a_job(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="orders", subjects="orders.*")
    publish(url, [("orders.eu", b"1"), ("orders.us", b"2"), ("orders.eu", b"3")])
    job = refresh_stream(client_alice, profile, "orders")
    assert job.status == JobStatus.SUCCEEDED
    html = client_alice.get(reverse("stream_detail", args=[profile.pk, "orders"])).content
    html = html.decode()
    assert "<dt>Stream Messages Limit</dt><dd class=\"mono\">-1</dd>" in html
    assert "<dt>Duplicate tracking time window</dt><dd class=\"mono\">2m0s</dd>" in html
    assert '<dd class="state-messages">3</dd>' in html
    assert "orders.eu</span> (2)" in html
    assert "Read stream" in html  # its jobs
    # Its audit entries: the audit log's own list, filtered to this stream, loaded in place.
    tab = reverse("stream_audit", args=[profile.pk, "orders"])
    assert f'hx-get="{tab}"' in html
    assert "stream.created" in client_alice.get(tab, HTTP_HX_REQUEST="true").content.decode()


@both_versions
def test_edit_shows_the_diff_and_keeps_fields_the_form_does_not_show(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    # Made by a raw API request with fields our form does not show: a source's filter, and on
    # newer servers atomic batches, consumer limits and metadata (which 2.9 does not know).
    create_raw(url, {"name": "origin", "subjects": ["origin.>"]})
    extra = {"allow_atomic": True, "consumer_limits": {"inactive_threshold": 30 * NS},
             "metadata": {"owner": "raw"}} if newer(profile, (2, 12, 0)) else {}
    create_raw(url, {
        "name": "raw_made", "subjects": ["raw.>"], "max_age": 3600 * NS,
        "description": "made without us",
        "sources": [{"name": "origin", "filter_subject": "origin.keep"}], **extra,
    })
    refresh_stream(client_alice, profile, "raw_made")
    edit = reverse("stream_edit", args=[profile.pk, "raw_made"])
    form = client_alice.get(edit).content.decode()
    assert 'name="max_age" value="1h0m0s"' in form
    assert 'name="name" value="raw_made"' in form and "A stream cannot be renamed." in form
    # What the browser submits: the pre-filled values, with one limit changed.
    answers = {**form_values(form), "max_msgs": "1000"}
    assert answers["sources"] == "origin" and answers["description"] == "made without us"
    review = client_alice.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    diff = review.split('<table class="table diff">')[1].split("</table>")[0]
    assert diff.count("<tr>") == 2  # the header and the one change
    assert "<td>Stream Messages Limit</td><td class=\"mono\">-1</td><td>→</td>" \
           "<td class=\"mono\">1000</td>" in diff
    assert not Job.objects.filter(kind=JobKind.STREAM_UPDATE).exists()
    digest = review.split('name="confirm" value="')[1].split('"')[0]
    job = run_post(client_alice, edit, {**answers, "confirm": digest})
    assert job.status == JobStatus.SUCCEEDED, job.error
    live = live_config(url, "raw_made")
    assert live["max_msgs"] == 1000
    assert live["sources"][0]["filter_subject"] == "origin.keep"
    assert live["description"] == "made without us"
    if extra:
        assert live["allow_atomic"] is True
        assert live["consumer_limits"] == {"inactive_threshold": 30 * NS}
        assert stream_config.user_metadata(live["metadata"]) == {"owner": "raw"}
    entry = AuditEvent.objects.get(action="stream.changed", target_name="raw_made")
    assert entry.changes == {"max_msgs": [-1, 1000]}
    assert entry.before["max_msgs"] == -1 and entry.after["max_msgs"] == 1000
    assert Stream.objects.get(profile=profile, name="raw_made").config["max_msgs"] == 1000
    assert StreamDefinition.objects.get(name="raw_made").config["max_msgs"] == 1000


def test_edit_refuses_when_the_server_changed_meanwhile(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="contested", subjects="contested")
    apply = reviewed_edit(client_alice, profile, "contested", max_msgs="10")
    api(url, "STREAM.UPDATE.contested", {**live_config(url, "contested"), "max_msgs": 99})
    job = run_post(client_alice, reverse("stream_edit", args=[profile.pk, "contested"]), apply)
    assert job.status == JobStatus.FAILED
    assert "changed on the server since the form was read: Stream Messages Limit" in job.error
    assert live_config(url, "contested")["max_msgs"] == 99


def test_read_only_fields_cannot_be_changed(client_alice: Client, profile: Profile) -> None:
    url = profile.server_list[0]
    create_raw(url, {"name": "locked", "subjects": ["locked"], "deny_purge": True})
    refresh_stream(client_alice, profile, "locked")
    edit = reverse("stream_edit", args=[profile.pk, "locked"])
    html = client_alice.get(edit).content.decode()
    assert "Purging was denied; that cannot be undone." in html
    assert "Storage is chosen at creation." in html
    # A tampered POST cannot re-allow purging or switch storage: disabled fields are ignored.
    answers = {**form_values(html), "allow_purge": "yes", "storage": "memory"}
    html = client_alice.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    assert "Nothing to change" in html


def test_purge_modes(client_alice: Client, profile: Profile) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="purgeable", subjects="p.>")
    publish(url, [(f"p.{key}", b"x") for key in ("a", "a", "b", "c", "c", "c")])
    purge = reverse("stream_purge", args=[profile.pk, "purgeable"])
    job = run_post(client_alice, purge, {"mode": "subject", "subject": "p.a"})
    assert job.result["purged"] == 2 and job.result["info"]["state"]["messages"] == 4
    job = run_post(client_alice, purge, {"mode": "keep", "keep": "2"})
    assert job.result["purged"] == 2  # keeps the last two
    job = run_post(client_alice, purge, {"mode": "seq", "seq": "6"})
    assert job.result["purged"] == 1 and job.result["info"]["state"]["first_seq"] == 6
    job = run_post(client_alice, purge, {"mode": "all"})
    assert job.result["purged"] == 1 and job.result["info"]["state"]["messages"] == 0
    entries = AuditEvent.objects.filter(action="stream.purged", target_name="purgeable")
    assert entries.count() == 4 and {entry.outcome for entry in entries} == {"succeeded"}
    assert entries.filter(changes={"subject": "p.a"}).exists()
    bad = client_alice.post(purge, {"mode": "subject", "subject": "p..a"},
                            HTTP_HX_REQUEST="true").content.decode()
    assert "empty token" in bad


def test_delete_needs_the_typed_name_and_is_audited(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="doomed", subjects="doomed")
    delete = reverse("stream_delete", args=[profile.pk, "doomed"])
    wrong = client_alice.post(delete, {"confirm_name": "dooomed"}, HTTP_HX_REQUEST="true")
    assert "Type doomed exactly." in wrong.content.decode()
    assert not Job.objects.filter(kind=JobKind.STREAM_DELETE).exists()
    job = run_post(client_alice, delete, {"confirm_name": "doomed"})
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert api(url, "STREAM.INFO.doomed")["error"]["err_code"] == 10059
    assert not Stream.objects.filter(profile=profile, name="doomed").exists()
    assert not StreamDefinition.objects.filter(profile=profile, name="doomed").exists()
    entry = AuditEvent.objects.get(action="stream.deleted", target_name="doomed")
    assert entry.outcome == "succeeded" and entry.before["subjects"] == ["doomed"]


@both_versions
def test_an_identical_create_says_the_stream_already_existed(
    client_alice: Client, profile: Profile,
) -> None:
    """Ten identical creates at once: one creates, nine say nothing changed, one audit entry."""
    config = {"name": "twin", "subjects": ["twin"]}
    jobs = [Job.objects.submit(JobKind.STREAM_CREATE, profile, Context(), target="twin",
                              params={"config": config}) for _ in range(10)]
    jobs = [wait_for_job(job.pk) for job in jobs]
    assert {job.status for job in jobs} == {JobStatus.SUCCEEDED}
    assert sorted(job.result["created"] for job in jobs) == [False] * 9 + [True]
    assert AuditEvent.objects.filter(action="stream.created", target_name="twin").count() == 1
    unchanged = next(job for job in jobs if not job.result["created"])
    finished = AuditEvent.objects.get(job=unchanged, action="job.finished")
    assert finished.message == "already existed with this configuration: nothing changed"
    outcome = client_alice.get(reverse("stream_create", args=[profile.pk]),
                               {"job": unchanged.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "already existed with this configuration: nothing changed" in outcome
    assert "was created" not in outcome


def test_deleting_a_stream_already_gone_says_so(client_alice: Client, profile: Profile) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="vanished", subjects="vanished")
    api(url, "STREAM.DELETE.vanished")  # deleted outside the dashboard
    job = run_post(client_alice, reverse("stream_delete", args=[profile.pk, "vanished"]),
                   {"confirm_name": "vanished"})
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"] is False
    card = client_alice.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert "Stream vanished was already gone: nothing to delete" in card.content.decode()
    assert not Stream.objects.filter(profile=profile, name="vanished").exists()
    entry = AuditEvent.objects.get(action="stream.deleted", target_name="vanished")
    assert entry.message == "already gone on the broker; its definition was removed"


@both_versions
def test_delete_and_purge_act_only_on_the_stream_their_page_showed(
    client_alice: Client, profile: Profile,
) -> None:
    """A stream made again under its name, or changed, since its confirm page was read is
    not the one the user confirmed: it and its messages survive."""
    url = profile.server_list[0]
    job = create_stream(client_alice, profile, name="confirmed", subjects="confirmed.*")
    assert job.status == JobStatus.SUCCEEDED, job.error
    pages = {view: reverse(view, args=[profile.pk, "confirmed"])
             for view in ("stream_delete", "stream_purge")}
    seen = {view: shown_seen(client_alice.get(page).content.decode())
            for view, page in pages.items()}
    config = live_config(url, "confirmed")
    api(url, "STREAM.DELETE.confirmed")
    create_raw(url, config)
    publish(url, [("confirmed.new", b"theirs")])

    purge = run_post(client_alice, pages["stream_purge"], {"seen": seen["stream_purge"],
                                                          "mode": "all"})
    delete = run_post(client_alice, pages["stream_delete"], {"seen": seen["stream_delete"],
                                                            "confirm_name": "confirmed"})
    for job in (purge, delete):
        assert job.status == JobStatus.FAILED
        assert job.error.startswith("confirmed was deleted and made again since the page was read")
        assert "seen" not in job.params  # what the page saw was for the run only
    assert api(url, "STREAM.INFO.confirmed")["state"]["messages"] == 1

    # Refused, the page shows the stream there now: confirmed again, that one is deleted.
    confirm = client_alice.get(pages["stream_delete"]).content.decode()
    assert "The stream and its 1 message on" in confirm
    api(url, "STREAM.UPDATE.confirmed", {**config, "description": "now billing's"})
    job = run_post(client_alice, pages["stream_delete"], {"seen": shown_seen(confirm),
                                                          "confirm_name": "confirmed"})
    assert job.status == JobStatus.FAILED
    assert "confirmed was changed (Description) since the page was read" in job.error
    assert AuditEvent.objects.get(action="stream.deleted", job=job).outcome == "failed"

    seen = shown_seen(client_alice.get(pages["stream_delete"]).content.decode())
    job = run_post(client_alice, pages["stream_delete"],
                   {"seen": seen, "confirm_name": "confirmed"})
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"], job.error
    assert api(url, "STREAM.INFO.confirmed")["error"]["err_code"] == 10059


def test_a_failed_edit_of_a_stream_deleted_outside_marks_it_gone(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="fleeting", subjects="fleeting")
    edit = reverse("stream_edit", args=[profile.pk, "fleeting"])
    apply = reviewed_edit(client_alice, profile, "fleeting", max_msgs="10")
    api(url, "STREAM.DELETE.fleeting")
    job = run_post(client_alice, edit, apply)
    assert job.status == JobStatus.FAILED and job.err_code == 10059
    row = Stream.objects.get(profile=profile, name="fleeting")
    assert row.status == "gone" and "deleted outside the dashboard?" in row.status_reason
    detail = client_alice.get(reverse("stream_detail", args=[profile.pk, "fleeting"]))
    assert "gone" in detail.content.decode()
    assert client_alice.get(edit).status_code == 403
    refresh_list(client_alice, profile)  # defined here: the listing keeps it, as missing
    assert Stream.objects.get(profile=profile, name="fleeting").sync == "missing"


def test_delete_and_purge_refuse_protected_streams(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    create_raw(url, {"name": "guarded", "subjects": ["guarded"], "deny_purge": True})
    refresh_stream(client_alice, profile, "guarded")
    for view in ("stream_delete", "stream_purge"):
        page = client_alice.post(reverse(view, args=[profile.pk, "guarded"]),
                                 {"confirm_name": "guarded", "mode": "all"}).content.decode()
        assert "The stream denies purging" in page
    assert not Job.objects.filter(kind__in=[JobKind.STREAM_DELETE, JobKind.STREAM_PURGE])
    # The job refuses too when the stored snapshot is stale: sealed on the server meanwhile.
    create_stream(client_alice, profile, name="sealed_later", subjects="sl")
    api(url, "STREAM.UPDATE.sealed_later", {**live_config(url, "sealed_later"), "sealed": True})
    job = run_post(client_alice, reverse("stream_purge", args=[profile.pk, "sealed_later"]),
                   {"mode": "all"})
    assert job.status == JobStatus.FAILED and "sealed" in job.error
    job = run_post(client_alice, reverse("stream_delete", args=[profile.pk, "sealed_later"]),
                   {"confirm_name": "sealed_later"})
    assert job.status == JobStatus.FAILED and "sealed" in job.error
    assert "error" not in api(url, "STREAM.INFO.sealed_later")
    entry = AuditEvent.objects.get(action="stream.deleted", target_name="sealed_later")
    assert entry.outcome == "failed"


def test_missing_and_offline_streams_are_kept_in_the_listing(
    client_alice: Client, profile: Profile,
) -> None:
    """A cluster reports streams it cannot read; the listing stores them marked, not dropped.
    (The cluster test in test_streams_compat makes a real one.)"""

    job = Job.objects.create(kind=JobKind.STREAM_LIST, profile=profile, profile_name="p",
                             target="p")
    KINDS[JobKind.STREAM_LIST].record(job, {
        "streams": [], "missing": ["lost"], "offline": {"far": "peer offline"},
        "total": 2, "server_version": "",
    }, None)
    rows = {row.name: row for row in Stream.objects.filter(profile=profile)}
    assert rows["lost"].status == "missing" and rows["far"].status_reason == "peer offline"
    html = client_alice.get(reverse("stream_list", args=[profile.pk])).content.decode()
    assert '<span class="badge failed" title="peer offline">offline</span>' in html


def test_a_create_whose_answer_was_lost_is_reconciled(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    """The server creates the stream but its answer never arrives: the job times out on the
    request, reads the stream's info, finds its config applied and succeeds, once."""
    with LostReplyProxy(nats_server.port, "$JS.API.STREAM.CREATE.") as proxy:
        profile = make_profile(proxy.url, last_server_version=nats_server.version)
        job = create_stream(client_alice, profile, name="unanswered", subjects="unanswered")
    assert len(proxy.dropped) == 1  # the create's answer was lost
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1
    assert job.result["info"]["config"]["subjects"] == ["unanswered"]
    assert live_config(nats_server.url, "unanswered")["subjects"] == ["unanswered"]


def test_an_update_whose_answer_was_lost_is_reconciled(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    """As for create: the job reads the stream back, finds the change applied, succeeds."""
    create_raw(nats_server.url, {"name": "unanswered_edit", "subjects": ["unanswered_edit"]})
    with LostReplyProxy(nats_server.port, "$JS.API.STREAM.UPDATE.") as proxy:
        profile = make_profile(proxy.url, last_server_version=nats_server.version)
        refresh_stream(client_alice, profile, "unanswered_edit")
        apply = reviewed_edit(client_alice, profile, "unanswered_edit", max_msgs="7")
        job = run_post(client_alice, reverse("stream_edit", args=[profile.pk, "unanswered_edit"]),
                       apply)
    assert len(proxy.dropped) == 1  # the update's answer was lost
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1
    assert live_config(nats_server.url, "unanswered_edit")["max_msgs"] == 7
    entry = AuditEvent.objects.get(action="stream.changed", target_name="unanswered_edit")
    assert entry.changes == {"max_msgs": [-1, 7]}


def test_a_delete_whose_answer_was_lost_is_reconciled(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    """The stream is gone though no answer came: the job looks, finds it gone, succeeds."""
    create_raw(nats_server.url, {"name": "unanswered_delete", "subjects": ["unanswered_del"]})
    with LostReplyProxy(nats_server.port, "$JS.API.STREAM.DELETE.") as proxy:
        profile = make_profile(proxy.url, last_server_version=nats_server.version)
        refresh_stream(client_alice, profile, "unanswered_delete")
        delete = reverse("stream_delete", args=[profile.pk, "unanswered_delete"])
        job = run_post(client_alice, delete, {"confirm_name": "unanswered_delete"})
    assert len(proxy.dropped) == 1  # the delete's answer was lost
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1 and job.result["deleted"] is True
    assert api(nats_server.url, "STREAM.INFO.unanswered_delete")["error"]["err_code"] == 10059
    entry = AuditEvent.objects.get(action="stream.deleted", target_name="unanswered_delete")
    assert entry.message == "deleted" and entry.before["subjects"] == ["unanswered_del"]


def test_job_card_stops_polling_and_announces_the_end(
    client_alice: Client, profile: Profile,
) -> None:
    job = create_stream(client_alice, profile, name="announced", subjects="announced")
    card = client_alice.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert card.status_code == 286 and card["HX-Trigger"] == "job-finished"
    assert "Stream announced was created" in card.content.decode()
    wait_for_job(job.pk)
    assert Job.objects.get(pk=job_from(card).pk).status == JobStatus.SUCCEEDED




def test_a_quick_job_answers_its_post_with_the_outcome(
    client_alice: Client, profile: Profile,
) -> None:
    """One response, no polling and no second request: the POST waits for the job's end."""
    response = client_alice.post(reverse("stream_create", args=[profile.pk]),
                                 {**SEED_FORM, "name": "at_once", "subjects": "at_once"},
                                 HTTP_HX_REQUEST="true").content.decode()
    assert "Stream <a" in response and "at_once</a> was created" in response
    assert "every 500ms" not in response and "job-finished from:body" not in response
    response = client_alice.post(reverse("stream_delete", args=[profile.pk, "at_once"]),
                                 {"confirm_name": "at_once"}, HTTP_HX_REQUEST="true")
    assert "Stream at_once was deleted" in response.content.decode()


def test_a_slow_job_leaves_its_form_on_the_page_disabled(
    client_alice: Client, make_profile: Callable[..., Profile], settings: Any,
) -> None:
    settings.JOB_WAIT = 0.2
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        hanging = make_profile(f"nats://127.0.0.1:{silent.getsockname()[1]}",
                               connect_timeout=2, last_server_version="2.10.0")
        response = client_alice.post(reverse("stream_create", args=[hanging.pk]),
                                     {**SEED_FORM, "name": "slow", "subjects": "slow"},
                                     HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert '<fieldset class="whole" disabled>' in html
        assert 'name="subjects" value="slow"' in html  # what was asked, still shown
        assert "Creating stream slow…" in html and 'hx-trigger="every 500ms"' in html
        job = job_from(response)
        region = f"{reverse('stream_create', args=[hanging.pk])}?job={job.pk}"
        assert f'hx-get="{region}" hx-trigger="every 500ms"' in html  # the region polls
    job = wait_for_job(job.pk, timeout=30)
    assert job.status == JobStatus.FAILED
    # Its last poll brings the outcome: the form again, enabled, with the reason, polling no
    # more (the card inside never polled on its own).
    last = client_alice.get(region, HTTP_HX_REQUEST="true").content.decode()
    assert '<fieldset class="whole">' in last and job.error in last
    assert "every 500ms" not in last


def test_refresh_answers_with_the_table_as_the_page_filters_it(
    client_alice: Client, profile: Profile,
) -> None:
    """One response: the job card and the listing itself, out of band, nothing to reload."""
    url = profile.server_list[0]
    create_raw(url, {"name": "refreshed_one", "subjects": ["refreshed.one"]})
    create_raw(url, {"name": "unrelated_one", "subjects": ["unrelated.one"]})
    response = client_alice.post(reverse("stream_list_refresh", args=[profile.pk]),
                                 {"q": "refreshed"}, HTTP_HX_REQUEST="true")
    assert "HX-Trigger" not in response
    html = response.content.decode()
    assert 'class="card job succeeded"' in html
    table = html.split('<div id="stream-table" hx-swap-oob="true"')[1]
    assert 'data-name="refreshed_one"' in table and "unrelated_one" not in table
    listing = reverse("stream_list", args=[profile.pk])
    assert f'hx-get="{listing}?q=refreshed"' in table  # it reloads itself, not the refresh


def test_a_stream_refresh_answers_with_its_details(client_alice: Client, profile: Profile) -> None:
    url = profile.server_list[0]
    create_stream(client_alice, profile, name="reread", subjects="reread")
    publish(url, [("reread", b"one"), ("reread", b"two")])
    response = client_alice.post(reverse("stream_refresh", args=[profile.pk, "reread"]),
                                 HTTP_HX_REQUEST="true")
    assert "HX-Trigger" not in response
    body = response.content.decode().split('<div id="stream-body" hx-swap-oob="true"')[1]
    assert '<dd class="state-messages">2</dd>' in body
