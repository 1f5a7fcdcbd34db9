"""The three lists (jobs, a connection's streams, the audit log): their declared filters, the
one pager they share, and how they answer htmx — a fragment for htmx, the whole page for a plain
load or a history restore, and a Vary header that keeps caches from mixing the two."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import has_vary_header

from streams.models import AuditEvent, Job, JobKind, JobStatus, Profile, Stream
from streams.views.audit import PAGE_SIZE

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


@pytest.fixture
def profile() -> Profile:
    return Profile.objects.create(name="listed", servers="nats://127.0.0.1:4222")


def _list_urls(profile: Profile) -> list[str]:
    return [reverse("job_list"), reverse("stream_list", args=[profile.pk]),
            reverse("audit_list"), reverse("profile_audit", args=[profile.pk])]


def _jobs(profile: Profile | None, count: int, **fields: Any) -> list[Job]:
    name = profile.name if profile else fields.pop("profile_name")
    return [Job.objects.create(kind=fields.get("kind", JobKind.STREAM_LIST), profile=profile,
                               profile_name=name, target=f"t{i}",
                               status=fields.get("status", JobStatus.SUCCEEDED))
            for i in range(count)]


def _streams(profile: Profile, names: list[str], **fields: Any) -> None:
    for name in names:
        Stream.objects.create(profile=profile, name=name, subjects=[name], subjects_text=name,
                              read_at=timezone.now(), **fields)


def _pager(html: str) -> tuple[str, list[dict[str, str]]]:
    """The pager's opening tag, and each of its links' attributes."""
    nav = re.search(r'(<nav class="pager"[^>]*>)(.*?)</nav>', html, re.S)
    assert nav, "no pager"
    links = [dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
             for attrs in re.findall(r"<a ([^>]*)>", nav.group(2))]
    return nav.group(1), links


def test_htmx_gets_the_table_and_a_history_restore_the_whole_page(
    client_alice: Client, profile: Profile,
) -> None:
    for url in _list_urls(profile):
        fragment = client_alice.get(url, headers=HTMX).content.decode()
        assert "<html" not in fragment and "<table" in fragment, url
        # Back to an address htmx pushed but no longer holds: htmx replaces the whole body.
        restored = client_alice.get(url, headers=HISTORY_RESTORE).content.decode()
        assert "<html" in restored and '<header class="topbar">' in restored, url


def test_pages_and_fragments_vary_on_the_htmx_headers(
    client_alice: Client, profile: Profile,
) -> None:
    for url in _list_urls(profile):
        for headers in ({}, HTMX, HISTORY_RESTORE):
            response: Any = client_alice.get(url, headers=headers)
            assert has_vary_header(response, "HX-Request"), (url, headers)
            assert has_vary_header(response, "HX-History-Restore-Request"), (url, headers)


def test_one_pager_sets_htmx_once_and_keeps_real_links(
    client_alice: Client, profile: Profile,
) -> None:
    _jobs(profile, 120, status=JobStatus.FAILED)
    _streams(profile, [f"s{i:03d}" for i in range(60)])
    AuditEvent.objects.append([AuditEvent(at=timezone.now(), action="job.finished")
                               for _ in range(60)])
    pages = [
        (reverse("job_list"), {"status": "failed", "kind": "", "page": "2"}, "job-table",
         ["status=failed&amp;page=1", "status=failed&amp;page=3"]),
        (reverse("stream_list", args=[profile.pk]), {"q": "s0", "sort": "-name", "page": "1"},
         "stream-table", ["q=s0&amp;sort=-name&amp;page=2"]),
        (reverse("audit_list"), {"action": "job.finished", "actor": ""}, "audit-table",
         ["action=job.finished", "action=job.finished&amp;before="]),
    ]
    for url, params, target, queries in pages:
        for headers in ({}, HTMX):
            html = client_alice.get(url, params, headers=headers).content.decode()
            nav, links = _pager(html)
            assert f'hx-target="#{target}"' in nav and 'hx-swap="outerHTML"' in nav
            assert 'hx-push-url="true"' in nav
            # Each link: a real address, fetched by htmx as it is, and nothing else to say.
            assert all(set(link) <= {"href", "hx-get", "rel"} for link in links), links
            assert all(link["href"] == link["hx-get"] for link in links)
            # They carry only where they go: the filters in use and the page.
            assert len(links) == len(queries), links
            for link, query in zip(links, queries, strict=True):
                assert link["href"].startswith(f"{url}?{query}"), (link, query)


def test_jobs_filter_by_status_kind_and_connection_name(
    client_alice: Client, profile: Profile,
) -> None:
    _jobs(profile, 3, status=JobStatus.FAILED)
    _jobs(profile, 2, status=JobStatus.FAILED, kind=JobKind.STREAM_PURGE)
    _jobs(profile, 4, status=JobStatus.SUCCEEDED)
    # A deleted connection's jobs keep its name and stay findable by it.
    _jobs(None, 1, profile_name="gone", status=JobStatus.FAILED)
    url = reverse("job_list")

    def listed(**params: str) -> list[Job]:
        response = client_alice.get(url, params, headers=HTMX)
        assert response.status_code == 200
        return list(response.context["page"].object_list)

    assert len(listed(status="failed")) == 6
    assert len(listed(status="failed", kind="stream_purge")) == 2
    assert len(listed(profile="listed")) == 9
    assert [job.profile_name for job in listed(profile="gone")] == ["gone"]
    assert len(listed(status="", kind="", profile="")) == 10
    page = client_alice.get(url, {"status": "failed", "profile": "listed"}).content.decode()
    assert '<option value="failed" selected>Failed</option>' in page
    assert '<option value="listed" selected>listed</option>' in page


def test_a_value_a_list_cannot_use_is_reported_and_the_others_still_apply(
    client_alice: Client, profile: Profile,
) -> None:
    _jobs(profile, 2, status=JobStatus.FAILED)
    _jobs(profile, 1, status=JobStatus.SUCCEEDED)
    response = client_alice.get(reverse("job_list"), {"status": "exploded", "profile": "listed"})
    assert response.status_code == 200
    assert "Select a valid choice. exploded is not one of the available choices." in (
        response.content.decode())
    assert len(response.context["page"].object_list) == 3


def test_streams_filter_hide_system_streams_and_sort_with_ties_by_name(
    client_alice: Client, profile: Profile,
) -> None:
    _streams(profile, ["orders", "payments", "audit"], storage="file")
    _streams(profile, ["cache"], storage="memory")
    _streams(profile, ["KV_cfg"], system_kind="kv", storage="file")
    url = reverse("stream_list", args=[profile.pk])

    def names(**params: str) -> list[str]:
        response = client_alice.get(url, params, headers=HTMX)
        return [stream.name for stream in response.context["page"].object_list]

    assert names() == ["audit", "cache", "orders", "payments"]
    assert names(system="on") == ["KV_cfg", "audit", "cache", "orders", "payments"]
    assert names(q="AY") == ["payments"]
    assert names(subject_text="ord") == ["orders"]
    assert names(sort="-storage") == ["cache", "audit", "orders", "payments"]
    assert names(sort="-name") == ["payments", "orders", "cache", "audit"]
    assert names(sort="-no_such_column") == names()  # a sort it does not know: by name
    html = client_alice.get(url, {"sort": "storage", "q": "a"}).content.decode()
    # The order chosen travels with the table (the headers re-render it) and belongs to the
    # filter form, so filtering keeps it; the header links keep the filters.
    assert '<input type="hidden" name="sort" value="storage" form="stream-filters"' in html
    assert '<form id="stream-filters"' in html
    assert f'href="{url}?q=a&amp;sort=-storage"' in html  # ascending now: the next is reverse
    assert f'href="{url}?q=a&amp;sort=name"' in html


def test_the_subject_filter_finds_the_streams_that_would_store_it(
    client_alice: Client, profile: Profile,
) -> None:
    """As `nats stream find --subject`: wildcards honoured on both sides; plain text apart."""
    taken = {"orders": ["prod.orders.*"], "payments": ["prod.payments.>"], "everything": [
        "prod.>"], "created": ["prod.orders.created"], "dev": ["dev.orders.created"],
        "mirror": []}
    for name, subjects in taken.items():
        Stream.objects.create(profile=profile, name=name, subjects=subjects,
                              subjects_text=" ".join(subjects), read_at=timezone.now())
    url = reverse("stream_list", args=[profile.pk])

    def names(**params: str) -> list[str]:
        response = client_alice.get(url, params, headers=HTMX)
        return [stream.name for stream in response.context["page"].object_list]

    assert names(subject="prod.orders.created") == ["created", "everything", "orders"]
    assert names(subject="prod.*.created") == ["created", "everything", "orders", "payments"]
    assert names(subject="dev.>") == ["dev"]
    assert names(subject="prod") == []  # "prod.>" needs a token after prod
    assert names(subject_text="orders") == ["created", "dev", "orders"]


def test_audit_date_filters_are_sequence_ranges_and_survive_the_last_day(
    client_alice: Client,
) -> None:
    day = datetime(2099, 6, 1, 12, tzinfo=UTC)
    AuditEvent.objects.append([AuditEvent(at=day + timedelta(days=i), action="job.finished",
                                          target_name=f"d{i}") for i in range(5)])
    url = reverse("audit_list")
    with CaptureQueriesContext(connection) as queries:
        response = client_alice.get(url, {"since": "2099-06-02", "until": "2099-06-04"})
    assert [row["target"] for row in response.context["page"].rows] == ["d3", "d2", "d1"]
    # Two probes of the (at, seq) index; the page itself is a range of seq like any filter.
    page_query = next(q["sql"] for q in queries.captured_queries
                      if q["sql"].endswith(f"LIMIT {PAGE_SIZE + 1}"))
    assert '"streams_auditevent"."at" >' not in page_query
    assert '"streams_auditevent"."seq" >=' in page_query
    assert '"streams_auditevent"."seq" <=' in page_query
    everything = client_alice.get(url, {"since": "2099-06-01", "until": "9999-12-31"})
    assert len(everything.context["page"].rows) == 5


def test_audit_rows_escape_what_entries_hold_and_shorten_long_messages(
    client_alice: Client,
) -> None:
    AuditEvent.objects.append([AuditEvent(at=timezone.now(), action="login",
                                          actor_name="<b>eve</b>",
                                          message="<script>alert(1)</script>" + "x" * 200)])
    html = client_alice.get(reverse("audit_list"), {"action": "login"}).content.decode()
    assert "<script>alert" not in html and "<b>eve" not in html
    assert "<td>&lt;b&gt;eve&lt;/b&gt;</td>" in html
    shown = "&lt;script&gt;alert(1)&lt;/script&gt;" + "x" * (119 - 25) + "…</td>"
    assert shown in html


def test_a_page_asks_for_one_read_of_its_rows_at_a_time(
    client_alice: Client, profile: Profile, settings: Any,
) -> None:
    """Pages opened together share the read queued for them; rows read within
    READ_AGAIN_AFTER are not read again, and the page is told to show them."""
    client = client_alice
    settings.READ_AGAIN_AFTER = 60
    read = reverse("stream_list_read", args=[profile.pk])
    first, second = client.post(read, headers=HTMX), client.post(read, headers=HTMX)
    reads = Job.objects.filter(profile=profile, kind=JobKind.STREAM_LIST)
    assert reads.count() == 1  # still queued: no worker here
    polled = f'hx-get="{reverse("job_detail", args=[reads.get().pk])}"'
    assert polled in first.content.decode() and polled in second.content.decode()
    reads.update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    fresh = client.post(read, headers=HTMX)
    assert reads.count() == 1 and fresh["HX-Trigger"] == "job-finished"
    assert 'hx-post="' + read not in client.get(
        reverse("stream_list", args=[profile.pk])).content.decode()
    reads.update(finished_at=timezone.now() - timedelta(seconds=61))
    assert 'hx-post="' + read in client.get(
        reverse("stream_list", args=[profile.pk])).content.decode()
    client.post(read, headers=HTMX)
    assert reads.count() == 2
