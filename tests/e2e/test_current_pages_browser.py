"""What a page shows is true, current and visible, in a real browser: a connection's streams and
a stream's consumers are read by opening the page, once, and swapped in when the read ends;
one count per thing; what is hidden is named by kind; every section a job changes follows it,
and a page whose object is gone says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from streams import audit
from streams.models import Job, JobKind, JobStatus, Profile
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, create_raw

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server of its own, so that the counts on the pages are exact."""
    server = NatsServer.start(tmp_path_factory.mktemp("nats-current"))
    yield server
    server.stop()


def _profile(server: NatsServer, name: str) -> Profile:
    return Profile.objects.create(name=name, servers=server.url,
                                  last_server_version=server.version)


def _read(profile: Profile, kind: str, target: str = "") -> None:
    """What an earlier visit stored: a read job's rows."""
    job = wait_for_job(Job.objects.submit(kind, profile, audit.Context(), target=target).pk)
    assert job.status == JobStatus.SUCCEEDED, job.error


def _href(page: Page) -> str:
    return page.evaluate("location.href")  # page.url misses htmx's pushState


def test_the_list_reads_the_server_by_itself_and_names_what_it_hides(
    page: Page, own_server: NatsServer, settings: Any,
) -> None:
    url = own_server.url
    for name in ("made_by_cli_a", "made_by_cli_b", "made_by_cli_c"):
        create_raw(url, {"name": name, "subjects": [f"{name}.>"], "storage": "memory"})
    create_raw(url, {"name": "KV_settings", "subjects": ["$KV.settings.>"],
                     "storage": "memory"})
    profile = _profile(own_server, "current-list")
    rows = page.locator("#stream-table tr.stream-row")

    page.goto(f"/profiles/{profile.pk}/streams/")
    expect(rows).to_have_count(3)  # no click: opening the page read the server
    note = page.locator("#stream-table .read-note")
    expect(note).to_contain_text("3 streams · read ")
    expect(note).to_contain_text("1 key-value bucket hidden")
    expect(page.locator("#stream-table")).not_to_contain_text("Refresh")
    assert Job.objects.filter(kind=JobKind.STREAM_LIST).count() == 1

    # Stored rows older than READ_AGAIN_AFTER are shown, and read again.
    settings.READ_AGAIN_AFTER = 1.5
    create_raw(url, {"name": "made_by_cli_d", "subjects": ["made_by_cli_d.>"],
                     "storage": "memory"})
    page.wait_for_timeout(1600)
    page.reload()
    expect(rows).to_have_count(4)
    expect(page.locator("tr.stream-row[data-name=made_by_cli_d]")).to_be_visible()
    assert Job.objects.filter(kind=JobKind.STREAM_LIST).count() == 2

    # What was hidden can be shown, from the note that names it; Back hides it again.
    settings.READ_AGAIN_AFTER = 60
    note.locator("a", has_text="show").click()
    expect(page.locator("tr.stream-row[data-name=KV_settings]")).to_contain_text(
        "key-value bucket")
    expect(page.locator("input[name=system]")).to_be_checked()
    assert "system=on" in _href(page)
    page.go_back()
    expect(rows).to_have_count(4)
    expect(page.locator("tr.stream-row[data-name=KV_settings]")).to_have_count(0)


def test_the_stream_page_reads_its_consumers_and_counts_them_once(
    page: Page, own_server: NatsServer, settings: Any,
) -> None:
    url = own_server.url
    create_raw(url, {"name": "orders_current", "subjects": ["orders_current.>"],
                     "storage": "memory"})
    for durable in ("billing", "shipping"):
        api(url, f"CONSUMER.DURABLE.CREATE.orders_current.{durable}",
            {"stream_name": "orders_current",
             "config": {"durable_name": durable, "ack_policy": "explicit"}})
    profile = _profile(own_server, "current-stream")
    # A listing stored the stream with its consumer count; its consumers are not read yet.
    _read(profile, JobKind.STREAM_LIST)
    page.goto(f"/profiles/{profile.pk}/stream/orders_current/")

    consumers = page.locator("section.consumers tr.consumer-row")
    expect(consumers).to_have_count(2)
    heading = page.locator("section.consumers h2")
    expect(heading).to_contain_text("Consumers 2 · total lag 0 · read ")
    body = page.locator("#stream-body")
    expect(body).not_to_contain_text("press Refresh")
    expect(page.locator("dl.state")).not_to_contain_text("Consumers")
    assert Job.objects.filter(kind=JobKind.STREAM_INFO, target="orders_current").count() == 1


def test_the_profile_pages_recent_jobs_follow_a_job(page: Page, own_server: NatsServer) -> None:
    profile = _profile(own_server, "current-profile")
    page.goto(f"/profiles/{profile.pk}/")
    jobs = page.locator("table:has(th:text-is('Took'))")
    expect(jobs).to_contain_text("No jobs yet")
    page.click("button:has-text('Test connection')")
    expect(page.locator("#test-result .job .badge")).to_have_text("Succeeded")
    expect(jobs).not_to_contain_text("No jobs yet")
    expect(jobs.locator("tr", has_text="Test connection")).to_contain_text("Succeeded")


def test_the_create_pages_heading_follows_the_job(page: Page, own_server: NatsServer) -> None:
    profile = _profile(own_server, "current-create")
    page.goto(f"/profiles/{profile.pk}/streams/new/")
    expect(page.locator("h1")).to_contain_text("New stream")
    page.get_by_label("Stream Name").fill("followed_create")
    page.locator("#id_subjects").fill("followed_create.>")
    page.click("button:has-text('Create stream')")
    expect(page.locator(".success")).to_have_text("Stream followed_create was created")
    expect(page.locator("h1")).not_to_contain_text("New stream")
    expect(page.locator("h1")).to_contain_text("Stream followed_create")


def test_a_consumer_delete_says_it_is_done_and_its_page_then_says_it_is_gone(
    page: Page, own_server: NatsServer,
) -> None:
    url = own_server.url
    create_raw(url, {"name": "followed", "subjects": ["followed.>"], "storage": "memory"})
    api(url, "CONSUMER.DURABLE.CREATE.followed.audit",
        {"stream_name": "followed", "config": {"durable_name": "audit",
                                               "ack_policy": "explicit"}})
    profile = _profile(own_server, "current-consumer")
    _read(profile, JobKind.STREAM_INFO, "followed")
    page.goto(f"/profiles/{profile.pk}/stream/followed/consumers/audit/delete/")
    expect(page.locator("h1")).to_have_text("Delete consumer audit of followed?")
    page.get_by_label("Type the consumer name to confirm").fill("audit")
    page.click("button:has-text('Delete')")
    expect(page.locator(".consumer-outcome")).to_contain_text("Consumer audit was deleted")
    expect(page.locator("h1")).to_have_text("Consumer audit of followed was deleted")

    page.reload()  # the page of a consumer that is gone
    expect(page.locator("h1")).to_have_text("No consumer audit of followed")
    page.locator("main a", has_text="followed").first.click()
    expect(page.locator("h1")).to_contain_text("followed")
    expect(page.locator("tr.consumer-row[data-name=audit]")).to_have_count(0)


def test_back_to_a_page_shows_what_is_there_now(page: Page, own_server: NatsServer) -> None:
    """Back restores a page from the browser's memory as it was: it is read again."""
    url = own_server.url
    create_raw(url, {"name": "returned", "subjects": ["returned.>"], "storage": "memory"})
    api(url, "CONSUMER.DURABLE.CREATE.returned.gone_soon",
        {"stream_name": "returned", "config": {"durable_name": "gone_soon",
                                               "ack_policy": "explicit"}})
    profile = _profile(own_server, "current-back")
    _read(profile, JobKind.STREAM_INFO, "returned")
    page.goto(f"/profiles/{profile.pk}/stream/returned/")
    rows = page.locator("tr.consumer-row[data-name=gone_soon]")
    expect(rows).to_have_count(1)
    page.goto(f"/profiles/{profile.pk}/stream/returned/consumers/gone_soon/delete/")
    page.get_by_label("Type the consumer name to confirm").fill("gone_soon")
    page.click("button:has-text('Delete')")
    expect(page.locator(".consumer-outcome")).to_contain_text("was deleted")
    page.go_back()
    expect(rows).to_have_count(0)
