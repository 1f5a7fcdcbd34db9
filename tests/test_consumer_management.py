"""Consumers managed from the dashboard, end to end on real servers (2.15, 2.9 and the
cluster): the `nats consumer add` form, read-modify-write edits with their review, delete,
pause and resume, each a job with its audit entries and the consumer's row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from streams import consumer_config, stream_config
from streams.cli_values import NS
from streams.models import AuditEvent, Consumer, Job, JobKind, JobStatus, Profile
from tests.support.consumer_forms import SEED_CONSUMER, create_consumer, reviewed_consumer_edit
from tests.support.nats_server import NatsServer
from tests.support.proxies import LostReplyProxy
from tests.support.raw_jetstream import api, create_raw, publish
from tests.support.stream_forms import form_values, refresh_stream, run_post, shown_seen

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(params=["2.15", "2.9"])
def server(request: pytest.FixtureRequest) -> NatsServer:
    return request.getfixturevalue("nats_server" if request.param == "2.15" else "nats_29_server")


@pytest.fixture
def profile(make_profile: Callable[..., Profile], server: NatsServer) -> Profile:
    return make_profile(server, last_server_version=server.version)


def newer(profile: Profile, version: tuple[int, int, int]) -> bool:
    return stream_config.parse_version(profile.last_server_version) >= version


def stream_with_messages(client: Client, profile: Profile, name: str, subjects: list[str],
                         **config: Any) -> None:
    """A stream made elsewhere, read by the dashboard (its page is where consumers start)."""
    url = profile.server_list[0]
    create_raw(url, {"name": name, "subjects": subjects, **config})
    publish(url, [(subjects[0].replace("*", "a").replace(">", "a"), b"m")] * 3)
    assert refresh_stream(client, profile, name).status == JobStatus.SUCCEEDED


def live(profile: Profile, stream: str, name: str) -> dict[str, Any]:
    answer = api(profile.server_list[0], f"CONSUMER.INFO.{stream}.{name}")
    assert "error" not in answer, answer
    return answer


def row_of(html: str, field: str) -> str:
    return html.split(f'id="row-{field}"')[1].split("</div>")[0]


def moment(text: str) -> datetime:
    return consumer_config.parse_time(text)


def test_create_form_asks_the_cli_prompts_with_its_defaults(
    client_alice: Client, profile: Profile,
) -> None:
    stream_with_messages(client_alice, profile, "prompted", ["prompted.>"])
    html = client_alice.get(reverse("consumer_create", args=[profile.pk, "prompted"]))
    page = html.content.decode()
    positions = [page.index(f">{consumer_config.LABELS[name]}:</label>")
                 for name in consumer_config.BASIC_FIELDS]
    assert positions == sorted(positions)  # the CLI's order
    for name, value in (("start_policy", "all"), ("max_deliver", "-1"),
                        ("max_ack_pending", "0"), ("idle_heartbeat", "0s")):
        assert f'name="{name}" value="{value}"' in page
    assert '<option value="explicit" selected>' in page
    assert '<option value="instant" selected>' in page
    # Options only newer servers take: metadata 2.10, pause and priority groups 2.11.
    assert (consumer_config.LABELS["metadata"] in page) is newer(profile, (2, 10, 0))
    assert (consumer_config.LABELS["pause_until"] in page) is newer(profile, (2, 11, 0))
    assert (consumer_config.LABELS["priority_groups"] in page) is newer(profile, (2, 11, 0))
    assert ('value="prioritized"' in page) is newer(profile, (2, 12, 0))
    assert not Job.objects.filter(kind=JobKind.CONSUMER_CREATE).exists()


def test_a_consumer_created_in_the_browser_is_read_back_field_by_field(
    client_alice: Client, profile: Profile,
) -> None:
    stream_with_messages(client_alice, profile, "cro", ["cro.*"])
    several = newer(profile, (2, 10, 0))
    answers = {
        "start_policy": "2", "filter_subjects": "cro.eu, cro.us" if several else "cro.eu",
        "max_deliver": "5", "max_ack_pending": "100", "backoff": "1s, 5s",
        "headers_only": "yes", "description": "made in the browser",
        "max_waiting": "64", "max_batch": "10", "max_expires": "30s", "max_bytes": "1MiB",
        "inactive_threshold": "1h", "sample_freq": "50", "mem_storage": "on",
    }
    expected: dict[str, Any] = {
        "durable_name": "pull_all", "deliver_policy": "by_start_sequence", "opt_start_seq": 2,
        "ack_policy": "explicit", "replay_policy": "instant", "max_deliver": 5,
        "max_ack_pending": 100, "backoff": [NS, 5 * NS], "headers_only": True,
        "description": "made in the browser", "ack_wait": NS, "max_waiting": 64,
        "max_batch": 10, "max_expires": 30 * NS, "max_bytes": 1 << 20,
        "inactive_threshold": 3600 * NS, "sample_freq": "50", "mem_storage": True,
    }
    expected.update({"filter_subjects": ["cro.eu", "cro.us"]} if several
                    else {"filter_subject": "cro.eu"})
    if newer(profile, (2, 10, 0)):
        answers["metadata"] = "team=ops"
    if newer(profile, (2, 11, 0)):
        answers.update(priority_policy="pinned_client", priority_groups="jobs",
                       priority_timeout="2m", pause_until="1h")
        expected.update(priority_policy="pinned_client", priority_groups=["jobs"],
                        priority_timeout=120 * NS)
    job = create_consumer(client_alice, profile, "cro", "pull_all", **answers)
    assert job.status == JobStatus.SUCCEEDED, job.error
    info = live(profile, "cro", "pull_all")
    config = info["config"]
    for key, value in expected.items():
        assert config.get(key) == value, key
    if "metadata" in answers:
        assert stream_config.user_metadata(config["metadata"]) == {"team": "ops"}
    if "pause_until" in answers:
        until = moment(config["pause_until"]) - datetime.now(UTC)
        assert timedelta(minutes=59) < until <= timedelta(hours=1) and info["paused"]
    # Every key the form asked for is on the server as asked (nothing silently dropped).
    assert not consumer_config.differs(config, job.params["config"])
    row = Consumer.objects.get(profile=profile, stream_name="cro", name="pull_all")
    assert (row.durable, row.push, row.ack_policy) == (True, False, "explicit")
    assert row.filter_subjects == expected.get("filter_subjects", ["cro.eu"])
    entry = AuditEvent.objects.get(action="consumer.created", job=job)
    assert entry.outcome == "succeeded" and entry.target_name == "cro"
    assert entry.after["max_deliver"] == 5 and "consumer pull_all" in entry.message
    outcome = client_alice.get(reverse("consumer_create", args=[profile.pk, "cro"]),
                               {"job": job.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "Consumer pull_all of" in outcome and "was created" in outcome
    page = client_alice.get(reverse("stream_detail", args=[profile.pk, "cro"])).content.decode()
    assert reverse("consumer_edit", args=[profile.pk, "cro", "pull_all"]) in page
    assert reverse("consumer_delete", args=[profile.pk, "cro", "pull_all"]) in page

    # A push consumer: the prompts only push consumers get.
    job = create_consumer(client_alice, profile, "cro", "pusher",
                          deliver_subject="cro_push.inbox", deliver_group="workers",
                          ack_policy="none", replay_policy="original", idle_heartbeat="5s",
                          flow_control="yes", rate_limit_bps="1000000", start_policy="new")
    assert job.status == JobStatus.SUCCEEDED, job.error
    config = live(profile, "cro", "pusher")["config"]
    assert {key: config.get(key) for key in (
        "deliver_subject", "deliver_group", "ack_policy", "replay_policy", "idle_heartbeat",
        "flow_control", "rate_limit_bps", "deliver_policy")} == {
        "deliver_subject": "cro_push.inbox", "deliver_group": "workers", "ack_policy": "none",
        "replay_policy": "original", "idle_heartbeat": 5 * NS, "flow_control": True,
        "rate_limit_bps": 1_000_000, "deliver_policy": "new"}
    assert Consumer.objects.get(profile=profile, stream_name="cro", name="pusher").push


@pytest.mark.parametrize(("answers", "field", "message"), [
    ({"idle_heartbeat": "5s"}, "idle_heartbeat", "Only push consumers send idle heartbeats"),
    ({"deliver_subject": "inbox.x", "max_waiting": "5"}, "max_waiting",
     "Only pull consumers take pull requests"),
    ({"deliver_subject": "inbox.*"}, "deliver_subject", "without wildcards"),
    ({"deliver_subject": "inv.a"}, "deliver_subject", "form a cycle"),
    ({"start_policy": "yesterday"}, "start_policy", "give all, new, last, subject"),
    ({"filter_subjects": "inv.a, inv.>"}, "filter_subjects", "must not overlap"),
    ({"backoff": "1m, 2m", "max_deliver": "1"}, "max_deliver", "for a backoff of 2 steps"),
    ({"backoff": "1m, 2m", "ack_wait": "30s"}, "ack_wait", "the ack wait is its first step"),
    ({"ack_policy": "none", "max_deliver": "3"}, "max_deliver", "delivered once"),
    ({"num_replicas": "3"}, "num_replicas", "At most as many as the stream (1)"),
    ({"durable_name": "a.b"}, "durable_name", "Not allowed in a consumer name: ."),
    ({"max_deliver": "99999999999999999999"}, "max_deliver", "At most"),
    ({"priority_groups": "jobs"}, "priority_groups", "Choose a priority policy"),
    ({"pause_until": "2001-01-01 00:00:00"}, "pause_until", "A time in the future"),
    # Past Go's time.Duration the server fails the request: "cannot unmarshal number".
    ({"backoff": "1m, 9999999999999h", "max_deliver": "3"}, "backoff",
     "Each at most 2562047h47m16.854775807s."),
])
def test_invalid_answers_are_refused_beside_their_field(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    answers: dict[str, str], field: str, message: str,
) -> None:
    profile = make_profile(nats_server, last_server_version=nats_server.version)
    if "error" in api(nats_server.url, "STREAM.INFO.inv"):  # the first case makes it
        create_raw(nats_server.url, {"name": "inv", "subjects": ["inv.*"]})
    refresh_stream(client_alice, profile, "inv")
    response = client_alice.post(reverse("consumer_create", args=[profile.pk, "inv"]),
                                 {**SEED_CONSUMER, "durable_name": "invalid", **answers},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert message in row_of(response.content.decode(), field)
    assert not Job.objects.filter(kind=JobKind.CONSUMER_CREATE).exists()


def test_the_longest_backoff_the_form_takes_the_server_takes(
    client_alice: Client, profile: Profile,
) -> None:
    stream_with_messages(client_alice, profile, "patient", ["patient.*"])
    job = create_consumer(client_alice, profile, "patient", "slow", max_deliver="3",
                          backoff="1s, 2562047h47m16.854775807s")
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert live(profile, "patient", "slow")["config"]["backoff"] == [NS, 2**63 - 1]


def test_several_filter_subjects_need_2_10(
    client_alice: Client, make_profile: Callable[..., Profile], nats_29_server: NatsServer,
) -> None:
    profile = make_profile(nats_29_server, last_server_version=nats_29_server.version)
    stream_with_messages(client_alice, profile, "old_filters", ["of.*"])
    html = client_alice.post(reverse("consumer_create", args=[profile.pk, "old_filters"]),
                             {**SEED_CONSUMER, "durable_name": "two",
                              "filter_subjects": "of.a of.b"},
                             HTTP_HX_REQUEST="true").content.decode()
    assert "Several filter subjects need nats-server 2.10" in row_of(html, "filter_subjects")


def test_broker_errors_come_back_on_their_field(client_alice: Client, profile: Profile) -> None:
    stream_with_messages(client_alice, profile, "wq", ["wq.*"], retention="workqueue")
    api(profile.server_list[0], "CONSUMER.DURABLE.CREATE.wq.first", {"stream_name": "wq",
        "config": {"durable_name": "first", "ack_policy": "explicit", "filter_subject": "wq.a"}})
    job = create_consumer(client_alice, profile, "wq", "second", filter_subjects="wq.a")
    assert job.status == JobStatus.FAILED and job.err_code == 10100
    assert job.error_field == "filter_subjects" and job.attempts == 1
    html = client_alice.get(reverse("consumer_create", args=[profile.pk, "wq"]),
                            {"job": job.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert "10100" in row_of(html, "filter_subjects")
    assert 'name="filter_subjects" value="wq.a"' in html  # the answers are kept
    assert AuditEvent.objects.get(action="consumer.created", job=job).outcome == "failed"
    # A name in use with another configuration is refused, never changed (2.9 would).
    taken = create_consumer(client_alice, profile, "wq", "first", filter_subjects="wq.b")
    assert taken.status == JobStatus.FAILED and taken.error_field == "durable_name"
    assert live(profile, "wq", "first")["config"]["filter_subject"] == "wq.a"
    # The same configuration again: nothing changed, said so.
    again = create_consumer(client_alice, profile, "wq", "first", filter_subjects="wq.a")
    assert again.status == JobStatus.SUCCEEDED and again.result["created"] is False
    assert not AuditEvent.objects.filter(action="consumer.created", job=again).exists()


def test_edit_shows_the_diff_and_keeps_fields_the_form_does_not_show(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    stream_with_messages(client_alice, profile, "kept", ["kept.*"])
    raw: dict[str, Any] = {
        "durable_name": "rawc", "ack_policy": "explicit", "deliver_policy": "by_start_sequence",
        "opt_start_seq": 2, "max_deliver": 10, "backoff": [NS, 2 * NS, 3 * NS],
        "description": "made without us", "filter_subject": "kept.a"}
    if newer(profile, (2, 10, 0)):
        raw["metadata"] = {"owner": "raw"}
    if newer(profile, (2, 11, 0)):  # paused: the edit form does not show it
        raw["pause_until"] = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert "error" not in api(url, "CONSUMER.CREATE.kept.rawc",
                              {"stream_name": "kept", "config": raw})
    refresh_stream(client_alice, profile, "kept")
    edit = reverse("consumer_edit", args=[profile.pk, "kept", "rawc"])
    form = client_alice.get(edit).content.decode()
    assert 'name="start_policy" value="2"' in form and 'name="backoff" value="1s, 2s, 3s"' in form
    assert "A consumer cannot be renamed." in row_of(form, "durable_name")
    assert "The acknowledgment policy is set at creation." in row_of(form, "ack_policy")
    assert "A pull consumer cannot become a push consumer." in row_of(form, "deliver_subject")
    answers = {**form_values(form, "consumer-form"), "max_ack_pending": "50",
               "description": "changed here"}
    review = client_alice.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    diff = review.split('<table class="table diff">')[1].split("</table>")[0]
    assert diff.count("<tr>") == 3  # the header and the two changes
    assert "<td>Maximum Acknowledgments Pending</td><td class=\"mono\">1000</td><td>→</td>" \
           "<td class=\"mono\">50</td>" in diff
    assert not Job.objects.filter(kind=JobKind.CONSUMER_UPDATE).exists()
    digest = review.split('name="confirm" value="')[1].split('"')[0]
    job = run_post(client_alice, edit, {**answers, "confirm": digest})
    assert job.status == JobStatus.SUCCEEDED, job.error
    config = live(profile, "kept", "rawc")["config"]
    assert config["max_ack_pending"] == 50 and config["description"] == "changed here"
    for key in ("deliver_policy", "opt_start_seq", "max_deliver", "backoff", "filter_subject"):
        assert config[key] == raw[key], key
    if "metadata" in raw:
        assert stream_config.user_metadata(config["metadata"]) == {"owner": "raw"}
    if "pause_until" in raw:
        assert moment(config["pause_until"]) == moment(raw["pause_until"])
    entry = AuditEvent.objects.get(action="consumer.changed", job=job)
    assert entry.changes == {"max_ack_pending": [1000, 50],
                             "description": ["made without us", "changed here"]}
    assert entry.before["max_ack_pending"] == 1000 and entry.after["max_ack_pending"] == 50
    row = Consumer.objects.get(profile=profile, stream_name="kept", name="rawc")
    assert row.config["max_ack_pending"] == 50
    # A tampered POST cannot change what the server keeps: disabled fields are ignored.
    html = client_alice.post(edit, {**form_values(client_alice.get(edit).content.decode(),
                                                  "consumer-form"), "ack_policy": "none",
                                    "durable_name": "renamed"},
                             HTTP_HX_REQUEST="true").content.decode()
    assert "Nothing to change" in html
    # Someone else changes a field after the form was read: refused, theirs kept.
    apply = reviewed_consumer_edit(client_alice, profile, "kept", "rawc", max_ack_pending="7")
    api(url, "CONSUMER.CREATE.kept.rawc", {"stream_name": "kept",
                                          "config": {**config, "max_ack_pending": 99}})
    job = run_post(client_alice, edit, apply)
    assert job.status == JobStatus.FAILED
    assert "changed on the server since the form was read: Maximum Acknowledgments" in job.error
    assert live(profile, "kept", "rawc")["config"]["max_ack_pending"] == 99


def test_delete_needs_the_typed_name_and_is_audited(
    client_alice: Client, profile: Profile,
) -> None:
    stream_with_messages(client_alice, profile, "deleting", ["deleting.*"])
    assert create_consumer(client_alice, profile, "deleting", "doomed").status == "succeeded"
    delete = reverse("consumer_delete", args=[profile.pk, "deleting", "doomed"])
    wrong = client_alice.post(delete, {"confirm_name": "dooomed"}, HTTP_HX_REQUEST="true")
    assert "Type doomed exactly." in wrong.content.decode()
    assert not Job.objects.filter(kind=JobKind.CONSUMER_DELETE).exists()
    job = run_post(client_alice, delete, {"confirm_name": "doomed"})
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"], job.error
    answer = api(profile.server_list[0], "CONSUMER.INFO.deleting.doomed")
    assert answer["error"]["err_code"] == 10014
    assert not Consumer.objects.filter(profile=profile, name="doomed").exists()
    entry = AuditEvent.objects.get(action="consumer.deleted", job=job)
    assert entry.before["durable_name"] == "doomed" and entry.target_name == "deleting"
    stream_page = client_alice.get(reverse("stream_detail", args=[profile.pk, "deleting"]))
    assert "Delete consumer" in stream_page.content.decode()  # the stream's jobs list it


def test_delete_refuses_a_consumer_made_again_under_its_name_since_the_page_was_read(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    stream_with_messages(client_alice, profile, "remade", ["remade.*"])
    assert create_consumer(client_alice, profile, "remade", "twin").status == "succeeded"
    delete = reverse("consumer_delete", args=[profile.pk, "remade", "twin"])
    answers = {"seen": shown_seen(client_alice.get(delete).content.decode()),
               "confirm_name": "twin"}
    # Someone else deletes it and makes another under the same name.
    api(url, "CONSUMER.DELETE.remade.twin")
    api(url, "CONSUMER.DURABLE.CREATE.remade.twin", {"stream_name": "remade", "config": {
        "durable_name": "twin", "ack_policy": "explicit", "description": "theirs"}})
    job = run_post(client_alice, delete, answers)
    assert job.status == JobStatus.FAILED
    assert "twin was deleted and made again since the page was read" in job.error
    assert live(profile, "remade", "twin")["config"]["description"] == "theirs"
    assert AuditEvent.objects.get(action="consumer.deleted", job=job).outcome == "failed"
    # Read again, the new one is what the page offers to delete.
    refresh_stream(client_alice, profile, "remade")
    answers = {"seen": shown_seen(client_alice.get(delete).content.decode()),
               "confirm_name": "twin"}
    job = run_post(client_alice, delete, answers)
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"], job.error
    assert AuditEvent.objects.get(action="consumer.deleted", job=job).before[
        "description"] == "theirs"


def test_delete_refuses_a_consumer_changed_since_the_page_was_read(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    stream_with_messages(client_alice, profile, "retuned", ["retuned.*"])
    assert create_consumer(client_alice, profile, "retuned", "tuned").status == "succeeded"
    delete = reverse("consumer_delete", args=[profile.pk, "retuned", "tuned"])
    answers = {"seen": shown_seen(client_alice.get(delete).content.decode()),
               "confirm_name": "tuned"}
    config = live(profile, "retuned", "tuned")["config"]
    api(url, "CONSUMER.DURABLE.CREATE.retuned.tuned", {
        "stream_name": "retuned", "config": {**config, "description": "in use by billing"}})
    job = run_post(client_alice, delete, answers)
    assert job.status == JobStatus.FAILED
    assert "tuned was changed (Description) since the page was read" in job.error
    assert live(profile, "retuned", "tuned")["config"]["description"] == "in use by billing"
    # A page whose carried sighting was tampered with is refused before any job.
    forged = client_alice.post(delete, {**answers, "seen": answers["seen"][:-2] + "xx"},
                               HTTP_HX_REQUEST="true")
    assert "This page is out of date: reload it." in forged.content.decode()
    assert Job.objects.filter(kind=JobKind.CONSUMER_DELETE).count() == 1


def test_pause_and_resume(client_alice: Client, profile: Profile) -> None:
    stream_with_messages(client_alice, profile, "pausing", ["pausing.*"])
    create_consumer(client_alice, profile, "pausing", "sleeper")
    pause = reverse("consumer_pause", args=[profile.pk, "pausing", "sleeper"])
    if not newer(profile, (2, 11, 0)):
        html = client_alice.post(pause, {"pause_until": "1h"}).content.decode()
        assert "Pausing a consumer needs nats-server 2.11 or later." in html
        assert not Job.objects.filter(kind=JobKind.CONSUMER_PAUSE).exists()
        return
    past = client_alice.post(pause, {"pause_until": "2001-01-01 00:00:00"},
                             HTTP_HX_REQUEST="true").content.decode()
    assert "A time in the future." in past
    job = run_post(client_alice, pause, {"pause_until": "2h"})
    assert job.status == JobStatus.SUCCEEDED and job.result["paused"], job.error
    info = live(profile, "pausing", "sleeper")
    assert info["paused"] and timedelta(minutes=119) < moment(
        info["config"]["pause_until"]) - datetime.now(UTC) <= timedelta(hours=2)
    assert Consumer.objects.get(profile=profile, name="sleeper").paused
    entry = AuditEvent.objects.get(action="consumer.paused", job=job)
    assert entry.before == {"paused": False, "pause_until": None}
    assert entry.after["paused"] is True
    job = run_post(client_alice, reverse("consumer_resume",
                                         args=[profile.pk, "pausing", "sleeper"]), {})
    assert job.status == JobStatus.SUCCEEDED and not job.result["paused"], job.error
    assert not live(profile, "pausing", "sleeper").get("paused")
    assert not Consumer.objects.get(profile=profile, name="sleeper").paused
    entry = AuditEvent.objects.get(action="consumer.resumed", job=job)
    assert entry.before["paused"] is True and entry.after["paused"] is False


def test_an_r3_consumer_on_the_cluster(
    client_alice: Client, make_profile: Callable[..., Profile], cluster: list[NatsServer],
) -> None:
    url = cluster[0].url
    profile = make_profile("\n".join(server.url for server in cluster), name="cluster",
                           last_server_version=cluster[0].version)
    create_raw(url, {"name": "r3_orders", "subjects": ["r3o.*"], "num_replicas": 3})
    refresh_stream(client_alice, profile, "r3_orders")
    job = create_consumer(client_alice, profile, "r3_orders", "r3_worker", num_replicas="3",
                          filter_subjects="r3o.new")
    assert job.status == JobStatus.SUCCEEDED, job.error
    info = api(url, "CONSUMER.INFO.r3_orders.r3_worker")
    assert info["config"]["num_replicas"] == 3 and len(info["cluster"]["replicas"]) == 2
    apply = reviewed_consumer_edit(client_alice, profile, "r3_orders", "r3_worker",
                                   max_deliver="4")
    job = run_post(client_alice, reverse("consumer_edit",
                                         args=[profile.pk, "r3_orders", "r3_worker"]), apply)
    assert job.status == JobStatus.SUCCEEDED, job.error
    config = api(url, "CONSUMER.INFO.r3_orders.r3_worker")["config"]
    assert config["max_deliver"] == 4 and config["num_replicas"] == 3
    assert config["filter_subject"] == "r3o.new"


def test_a_create_whose_answer_was_lost_is_reconciled(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    """The server creates the consumer but its answer never arrives: the job reads it back,
    finds it as asked and succeeds, once."""
    create_raw(nats_server.url, {"name": "lost_answers", "subjects": ["lost_answers"]})
    with LostReplyProxy(nats_server.port, "$JS.API.CONSUMER.CREATE.") as proxy:
        profile = make_profile(proxy.url, last_server_version=nats_server.version)
        refresh_stream(client_alice, profile, "lost_answers")
        job = create_consumer(client_alice, profile, "lost_answers", "unanswered",
                              max_deliver="3")
    assert len(proxy.dropped) == 1  # the create's answer was lost
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1, job.error
    assert job.result["created"] is True
    assert api(nats_server.url, "CONSUMER.INFO.lost_answers.unanswered")["config"][
        "max_deliver"] == 3
    assert AuditEvent.objects.filter(action="consumer.created", job=job).count() == 1
