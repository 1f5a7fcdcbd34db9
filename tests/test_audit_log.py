"""The audit-log review screen: filters (each and combined) kept in the URL, keyset pagination,
the detail view with its field-by-field change, per-profile and per-stream tabs, streamed
exports equal to the screen, and the events the log records about itself."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from streams import audit
from streams.models import AuditEvent, Job, Profile
from streams.views import audit as audit_views
from tests.support.teams import member

pytestmark = pytest.mark.django_db

# Later than any test run: entries never go back in time, and alice's login comes first.
DAY1 = datetime(2099, 3, 1, 9, 30, tzinfo=UTC)


def _entries(specs: list[dict[str, Any]]) -> list[AuditEvent]:
    """Entries with chosen times (AuditEvent.objects.record stamps "now"), chained as usual."""
    events = [
        AuditEvent(at=spec.pop("at", DAY1), ip=spec.pop("ip", "192.0.2.7"), **spec)
        for spec in (dict(spec) for spec in specs)
    ]
    AuditEvent.objects.append(events)
    return events


@pytest.fixture
def sample() -> list[AuditEvent]:
    rows = []
    for i in range(24):
        rows.append({
            "at": DAY1 + timedelta(days=i // 8, minutes=i),
            "actor_name": ("alice", "bob", "carol")[i % 3],
            "action": ("profile.changed", "job.requested", "job.finished", "login")[i % 4],
            "target_type": ("profile", "stream", "stream", "user")[i % 4],
            "target_name": ("orders", "payments")[i % 2],
            "profile_name": ("prod", "staging")[i % 2] if i % 4 != 3 else "",
            "outcome": ("succeeded", "failed", "denied")[i % 3],
            "message": f"entry {i}" + (" Needle" if i % 5 == 0 else ""),
        })
    return _entries(rows)


def _screen(client: Client, url: str = "/audit/", **params: Any) -> list[dict[str, Any]]:
    """Every row the screen shows for these filters, walking the older → links."""
    rows: list[dict[str, Any]] = []
    while True:
        response = client.get(url, params)
        assert response.status_code == 200
        page = response.context["page"]
        rows.extend(page.rows)
        if page.older is None:
            return rows
        params = {**params, "before": page.older}


FILTER_CASES: list[tuple[dict[str, str], Any]] = [
    ({"actor": "bob"}, lambda e: e.actor_name == "bob"),
    ({"action": "job.requested"}, lambda e: e.action == "job.requested"),
    ({"target_type": "stream"}, lambda e: e.target_type == "stream"),
    ({"target": "payments"}, lambda e: e.target_name == "payments"),
    ({"profile": "staging"}, lambda e: e.profile_name == "staging"),
    ({"outcome": "denied"}, lambda e: e.outcome == "denied"),
    ({"since": "2099-03-02"}, lambda e: e.at.date() >= DAY1.date() + timedelta(days=1)),
    ({"until": "2099-03-01"}, lambda e: e.at.date() <= DAY1.date()),
    ({"since": "2099-03-02", "until": "2099-03-02"},
     lambda e: e.at.date() == DAY1.date() + timedelta(days=1)),
    ({"q": "needle"}, lambda e: "Needle" in e.message),
    ({"actor": "alice", "outcome": "succeeded", "target_type": "profile"},
     lambda e: e.actor_name == "alice" and e.outcome == "succeeded" and e.target_type == "profile"),
    ({"action": "job.finished", "target": "orders", "profile": "prod", "since": "2099-03-02",
      "q": "entry"},
     lambda e: e.action == "job.finished" and e.target_name == "orders"
     and e.profile_name == "prod" and e.at.date() >= DAY1.date() + timedelta(days=1)),
]


@pytest.mark.parametrize(("params", "matches"), FILTER_CASES,
                         ids=[",".join(p) for p, _ in FILTER_CASES])
def test_each_filter_and_combinations(client_alice: Client, sample: list[AuditEvent],
                                      params: dict[str, str], matches: Any) -> None:
    everything = list(AuditEvent.objects.all())  # the sample and alice's login
    expected = sorted((e.seq for e in everything if matches(e)), reverse=True)
    assert expected, "the sample must exercise the filter"
    assert len(expected) < len(everything)
    assert [row["seq"] for row in _screen(client_alice, **params)] == expected


def test_filters_live_in_the_url_and_htmx_gets_only_the_table(
    client_alice: Client, sample: list[AuditEvent]
) -> None:
    page = client_alice.get("/audit/", {"actor": "bob", "outcome": "failed"})
    html = page.content.decode()
    assert 'name="actor" value="bob"' in html and '<option value="failed" selected>' in html
    assert "<html" in html and "Export this filter" in html
    assert "/audit/export.csv?actor=bob&amp;outcome=failed" in html
    fragment = client_alice.get("/audit/", {"actor": "bob"}, headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="audit-table">') and "<html" not in body
    assert all(row["actor"] == "bob" for row in fragment.context["page"].rows)
    # htmx sends every field, empty ones too; the address bar gets only those in use.
    on_its_page = {"HX-Request": "true", "HX-Current-URL": "http://testserver/audit/"}
    pushed = client_alice.get("/audit/", {"actor": "bob", "action": "", "before": "20"},
                              headers=on_its_page)
    assert pushed["HX-Push-Url"] == "/audit/?actor=bob&before=20"
    # Loaded as a section of another page, the log never moves that page's address.
    in_a_profile = client_alice.get("/audit/", {"actor": "bob"}, headers={
        **on_its_page, "HX-Current-URL": "http://testserver/profiles/1/"})
    assert in_a_profile["HX-Push-Url"] == "false"


def test_date_range_outside_the_log_is_empty(client_alice: Client,
                                             sample: list[AuditEvent]) -> None:
    assert _screen(client_alice, since="2100-01-01") == []
    assert _screen(client_alice, until="2000-01-01") == []
    assert len(_screen(client_alice, since="2000-01-01", until="2100-01-01")) == 25


def test_invalid_date_is_reported_and_ignored(client_alice: Client,
                                              sample: list[AuditEvent]) -> None:
    response = client_alice.get("/audit/", {"since": "yesterday-ish", "actor": "carol"})
    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()
    assert len(_screen(client_alice, actor="carol", since="junk")) == 8


@pytest.mark.parametrize(("total", "pages"), [(0, [0]), (1, [1]), (50, [50]), (51, [50, 1]),
                                              (100, [50, 50]), (101, [50, 50, 1])])
def test_keyset_pagination_boundaries(client_alice: Client, total: int,
                                      pages: list[int]) -> None:
    _entries([{"action": "job.finished", "target_name": f"t{i}"} for i in range(total)])
    _entries([{"action": "logout"}] * 3)  # other entries in between must not shift pages
    seen, params, newer_links = [], {"action": "job.finished"}, []
    for expected in pages:
        response = client_alice.get("/audit/", params)
        page = response.context["page"]
        assert len(page.rows) == expected
        seen.extend(row["seq"] for row in page.rows)
        newer_links.append(page.newer)
        params = {"action": "job.finished", "before": page.older}
    assert page.older is None and "older →" not in response.content.decode()
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == total
    assert newer_links[0] is None and all(newer_links[1:])
    if len(pages) > 1:  # ← newer from the second page brings back exactly the first
        second = client_alice.get("/audit/", {"action": "job.finished", "before": seen[49]})
        back = client_alice.get("/audit/", {"action": "job.finished",
                                            "after": second.context["page"].newer})
        assert [row["seq"] for row in back.context["page"].rows] == seen[:50]
        assert back.context["page"].newer is None


def test_pages_cost_no_count_and_no_offset(client_alice: Client) -> None:
    _entries([{"action": "login"}] * 120)  # after alice's login, #1: #2 to #121
    with CaptureQueriesContext(connection) as queries:
        response = client_alice.get("/audit/", {"action": "login", "before": 60})
    # The page was read from the table: a page that ran no query would prove nothing.
    assert [row["seq"] for row in response.context["page"].rows] == list(range(59, 9, -1))
    sql = [q["sql"].upper() for q in queries.captured_queries]
    assert any(AuditEvent._meta.db_table.upper() in statement for statement in sql)
    costly = [statement for statement in sql if "COUNT(" in statement or "OFFSET" in statement]
    assert costly == []


def test_detail_shows_context_and_change_in_form_labels(client_alice: Client) -> None:
    create = client_alice.post("/profiles/new/", {
        "name": "prod", "broker_kind": "nats", "servers": "nats://127.0.0.1:4222",
        "connect_timeout": "2", "auth_method": "token", "token": "tok-SECRET-1",
    }, HTTP_USER_AGENT="pytest-agent/1")
    assert create.status_code == 302
    profile = Profile.objects.get(name="prod")
    edit = client_alice.post(f"/profiles/{profile.pk}/edit/", {
        "name": "prod", "broker_kind": "nats", "servers": "nats://10.0.0.9:4222",
        "connect_timeout": "3", "auth_method": "token", "token": "tok-SECRET-2",
    }, HTTP_USER_AGENT="pytest-agent/1")
    assert edit.status_code == 302
    changed = AuditEvent.objects.get(action="profile.changed")
    page = client_alice.get(f"/audit/{changed.seq}/")
    html = page.content.decode()
    assert "alice" in html and "127.0.0.1" in html and "pytest-agent/1" in html
    assert changed.request_id and changed.request_id in html
    rows = {row.label: row for row in page.context["changes"]}
    assert rows["Servers"].kind == "changed" and rows["Servers"].new == "nats://10.0.0.9:4222"
    assert rows["Connect timeout (s)"].old == "2.0"
    assert rows["Token"].kind == "changed" and rows["Token"].secret and not rows["Token"].new
    assert "Name" not in rows  # unchanged fields are not listed
    for secret in ("tok-SECRET-1", "tok-SECRET-2"):
        assert secret not in html
        assert secret not in client_alice.get("/audit/export.jsonl").getvalue().decode()


def test_detail_labels_stream_fields_and_links_the_job(client_alice: Client, user: Any) -> None:
    job = Job.objects.create(kind="stream_update", profile_name="prod", target="orders")
    event = AuditEvent.objects.record("stream.changed", audit.Context(actor=user),
                                      target_type="stream", target_name="orders", job=job,
                                      outcome="succeeded",
                                      before={"max_msgs": -1, "description": "old",
                                              "sealed": False},
                                      after={"max_msgs": 1000, "subjects": ["orders.>"],
                                             "sealed": False})
    page = client_alice.get(f"/audit/{event.seq}/")
    assert f'href="/jobs/{job.pk}/"' in page.content.decode()
    # The stream form's labels (the `nats stream add` prompts), not the JetStream keys; the
    # unchanged "sealed" gets no row.
    changes = [(row.label, row.kind, row.old, row.new) for row in page.context["changes"]]
    assert changes == [
        ("Description", "removed", "old", ""),
        ("Stream Messages Limit", "changed", "-1", "1000"),
        ("Subjects", "added", "", "orders.>"),
    ]
    job_id = job.pk
    job.delete()  # the entry outlives its job
    assert f"#{job_id} (deleted)" in client_alice.get(f"/audit/{event.seq}/").content.decode()


def test_detail_labels_consumer_fields_with_the_consumer_form(client_alice: Client,
                                                              user: Any) -> None:
    # A consumer entry's target is its stream, yet its keys are the consumer's: max_bytes is
    # the stream form's "Total Stream Size" and something else entirely on a consumer.
    event = AuditEvent.objects.record("consumer.changed", audit.Context(actor=user),
                                      target_type="stream", target_name="orders",
                                      outcome="succeeded",
                                      before={"max_bytes": -1, "max_deliver": -1},
                                      after={"max_bytes": 1024, "max_deliver": 5})
    page = client_alice.get(f"/audit/{event.seq}/")
    changes = [(row.label, row.old, row.new) for row in page.context["changes"]]
    assert changes == [
        ("Maximum max bytes for a pull request to accept", "-1", "1024"),
        ("Maximum Allowed Deliveries", "-1", "5"),
    ]


def test_entries_survive_deletion_of_what_they_describe(client_alice: Client) -> None:
    profile = Profile.objects.create(name="gone-soon", servers="nats://127.0.0.1:4222")
    created = AuditEvent.objects.record("profile.created", audit.Context(), target_type="profile",
                                        target_name=profile.name, profile=profile,
                                        after=audit.profile_snapshot(profile))
    assert client_alice.post(f"/profiles/{profile.pk}/delete/").status_code == 302
    assert not Profile.objects.filter(name="gone-soon").exists()
    get_user_model().objects.filter(username="alice").update(is_active=True)
    kept = AuditEvent.objects.get(seq=created.seq)
    assert kept.profile_id == profile.pk and kept.profile_name == "gone-soon"
    page = client_alice.get(f"/audit/{created.seq}/")
    assert page.status_code == 200 and "gone-soon" in page.content.decode()
    names = [row["target"] for row in _screen(client_alice, profile="gone-soon")]
    assert names == ["gone-soon"]
    assert AuditEvent.objects.filter(action="profile.deleted", target_name="gone-soon").exists()
    assert audit.verify().ok


def test_profile_and_stream_tabs_reuse_the_list(client_alice: Client) -> None:
    prod = Profile.objects.create(name="prod", servers="nats://127.0.0.1:4222")
    other = Profile.objects.create(name="other", servers="nats://127.0.0.1:4222")
    for profile in (prod, other):
        for name in ("orders", "payments"):
            AuditEvent.objects.record("job.requested", audit.Context(), target_type="stream",
                                      target_name=name, profile=profile, outcome="requested")
    tab = client_alice.get(f"/profiles/{prod.pk}/audit/")
    assert {row["profile"] for row in tab.context["page"].rows} == {"prod"}
    assert len(tab.context["page"].rows) == 2
    assert tab.templates[0].name == "streams/audit_list.html"
    stream = _screen(client_alice, reverse("stream_audit", args=[prod.pk, "orders"]))
    assert [(r["profile"], r["target"]) for r in stream] == [("prod", "orders")]
    fragment = client_alice.get(f"/profiles/{prod.pk}/audit/", headers={"HX-Request": "true"})
    assert fragment.content.decode().lstrip().startswith('<div id="audit-table">')
    detail = client_alice.get(f"/profiles/{prod.pk}/").content.decode()
    assert f'hx-get="/profiles/{prod.pk}/audit/"' in detail


def test_export_equals_the_filtered_screen(client_alice: Client) -> None:
    _entries([{"action": "job.finished", "outcome": ("failed", "succeeded")[i % 2],
               "target_name": f"s-{i}", "actor_name": "bob", "message": f'said "hi", {i}'}
              for i in range(130)])
    _entries([{"action": "login", "outcome": "failed", "actor_name": "-bob"}] * 5)
    params = {"action": "job.finished", "outcome": "failed"}
    screen = _screen(client_alice, **params)
    assert len(screen) == 65
    jsonl = client_alice.get("/audit/export.jsonl", params)
    assert jsonl.streaming and jsonl["Content-Type"].startswith("application/x-ndjson")
    lines = jsonl.getvalue().decode().splitlines()
    # The screen's rows, and what each changed: none of these changed anything.
    assert [json.loads(line) for line in lines] == [
        {**row, "changes": None, "before": None, "after": None} for row in screen]
    response = client_alice.get("/audit/export.csv", params)
    assert response.streaming and "attachment;" in response["Content-Disposition"]
    reader = csv.reader(io.StringIO(response.getvalue().decode()))
    assert next(reader) == [header for _, header in audit_views.COLUMNS] + [
        "Job", "Changed", "Before", "After"]
    assert list(reader) == [[str(row[key]) for key, _ in audit_views.COLUMNS] + [""] * 4
                            for row in screen]


def test_a_change_is_one_row_saying_what_changed_and_its_job_entries_fold_under_it(
    client_alice: Client,
) -> None:
    """One edit writes job.requested, stream.changed and job.finished: the reviewer reads one
    row, the change, with its values; the job's own entries are a link away and exported."""
    edit = Job.objects.create(kind="stream_update", profile_name="prod", target="orders")
    refused = Job.objects.create(kind="stream_delete", profile_name="prod", target="orders")
    common = {"target_type": "stream", "target_name": "orders", "profile_name": "prod"}
    _entries([
        {**common, "action": "job.requested", "job": edit, "outcome": "requested"},
        {**common, "action": "stream.changed", "job": edit, "outcome": "succeeded",
         "message": "changed", "changes": {"max_msgs": [-1, 5000]},
         "before": {"name": "orders", "max_msgs": -1},
         "after": {"name": "orders", "max_msgs": 5000}},
        {**common, "action": "job.finished", "job": edit, "outcome": "succeeded"},
        {**common, "action": "job.requested", "job": refused, "outcome": "requested"},
        {**common, "action": "job.finished", "job": refused, "outcome": "failed",
         "message": "task queue unreachable"},
    ])

    def actions(**params: str) -> list[str]:
        return [row["action"] for row in _screen(client_alice, target="orders", **params)]

    assert actions() == ["job.finished", "stream.changed"]  # the refused attempt, the change
    [change] = [row for row in _screen(client_alice, target="orders")
                if row["action"] == "stream.changed"]
    assert change["changed"] == "Stream Messages Limit -1 → 5000"
    html = client_alice.get("/audit/", {"target": "orders"}).content.decode()
    assert "Stream Messages Limit -1 → 5000" in html
    assert f'href="/audit/?job={edit.pk}"' in html
    assert actions(job=str(edit.pk)) == ["job.finished", "stream.changed", "job.requested"]
    assert len(actions(lifecycle="on")) == 5
    assert actions(action="stream") == ["stream.changed"]  # a family
    assert actions(action="job") == ["job.finished", "job.requested", "job.finished",
                                     "job.requested"]
    exported = [json.loads(line) for line in client_alice.get(
        "/audit/export.jsonl", {"target": "orders"}).getvalue().decode().splitlines()]
    assert len(exported) == 5  # every entry of the chain, folded or not
    [changed] = [row for row in exported if row["action"] == "stream.changed"]
    assert (changed["before"]["max_msgs"], changed["after"]["max_msgs"]) == (-1, 5000)
    assert changed["changes"] == {"max_msgs": [-1, 5000]} and changed["job"] == edit.pk


def test_csv_export_defuses_spreadsheet_formulas(client_alice: Client) -> None:
    _entries([{"action": "login", "actor_name": "=HYPERLINK(1)", "message": "+1"}])
    text = client_alice.get("/audit/export.csv").getvalue().decode()
    assert "'=HYPERLINK(1)" in text and ",'+1" in text


def test_export_is_audited_and_excludes_its_own_entry(client_alice: Client) -> None:
    _entries([{"action": "login", "target_name": "x"}] * 3)
    rows = client_alice.get("/audit/export.jsonl", {"action": "audit.exported"}).getvalue()
    assert rows == b""
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor_name == "alice" and exported.ip == "127.0.0.1"
    assert exported.after == {"format": "jsonl", "filters": {"action": "audit.exported"},
                              "up_to_seq": exported.seq - 1}
    assert audit.verify().ok


def _export_peak(client: Client, params: dict[str, str]) -> tuple[int, int]:
    response = client.get("/audit/export.jsonl", params)
    tracemalloc.start()
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return lines, peak


def test_streaming_export_memory_stays_flat(client_alice: Client) -> None:
    batch = [{"action": ("job.requested", "job.finished")[i % 2], "target_type": "stream",
              "target_name": f"stream-{i}", "message": "x" * 200} for i in range(2000)]
    for _ in range(12):
        _entries(batch)
    half_lines, half_peak = _export_peak(client_alice, {"action": "job.requested"})
    full_lines, full_peak = _export_peak(client_alice, {"target_type": "stream"})
    assert (half_lines, full_lines) == (12_000, 24_000)
    # Twice the rows, the same memory: only one chunk of 2,000 rows is alive at a time (24,000
    # rows held at once would take tens of megabytes).
    assert full_peak < 1.3 * half_peak
    assert full_peak < 8 * 1024 * 1024


def test_permission_denied_is_recorded(client: Client, make_profile: Any) -> None:
    profile = make_profile("nats://127.0.0.1:1", name="guarded")
    clerk = member(profile.team, "clerk", "viewer")
    client.force_login(clerk)
    assert client.get(reverse("profile_edit", args=[profile.pk]), REMOTE_ADDR="203.0.113.5",
                      HTTP_USER_AGENT="curl/8").status_code == 403
    [denied] = AuditEvent.objects.filter(action="permission.denied")
    assert denied.target_name == f"/profiles/{profile.pk}/edit/"
    assert denied.actor_name == "clerk" and denied.ip == "203.0.113.5"
    assert denied.user_agent == "curl/8" and denied.outcome == "denied"
    assert denied.profile == profile and denied.after["action"] == "profile.edit"
    assert "only admins and above may edit this connection" in denied.message


def test_the_log_shows_a_user_in_no_team_only_their_own_entries(
    client_alice: Client, make_profile: Any,
) -> None:
    hidden = make_profile("nats://127.0.0.1:1", name="hidden")
    AuditEvent.objects.record("stream.created", audit.Context(), target_type="stream",
                              target_name="unseen-stream", profile=hidden,
                              outcome="succeeded")
    loner = get_user_model().objects.create_user("loner", password="pw-long-enough-1")
    AuditEvent.objects.record("user.password_changed", audit.Context(actor=loner),
                              target_type="user", target_name="loner", outcome="succeeded")
    client = Client()
    client.force_login(loner)
    page = client.get("/audit/").content.decode()
    assert 'href="/audit/">Audit log</a>' in page  # everyone reviews what they may see
    assert "user.password_changed</td>" in page
    assert "unseen-stream" not in page and ">hidden<" not in page
