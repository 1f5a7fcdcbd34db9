"""A URL belongs to the page: a section loaded into a page (its audit entries, a stream's first
messages) leaves the address bar alone, Back returns to the page before, and only a user's own
filtering or browsing pushes an address. Read through `location.href`: Playwright's `page.url`
can miss a `pushState`."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from streams import audit
from streams.models import AuditEvent, JobKind, Profile, Stream
from tests.support.jobs import read_just_now
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import create_raw, publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def href(page: Page) -> str:
    return page.evaluate("location.href")


def address_stays(page: Page, url: str, seconds: float = 5) -> None:
    """`url` in the address bar, and still there `seconds` later, looking every 0.1 s."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert href(page) == url
        page.wait_for_timeout(100)


def back_to(page: Page, url: str) -> None:
    page.go_back()
    wait_until(lambda: href(page) == url, 5, lambda: f"Back landed on {href(page)}, not {url}")


def test_a_profile_and_a_stream_page_keep_their_address_while_their_audit_loads(
    page: Page, live_server: object, settings: Any,
) -> None:
    profile = Profile.objects.create(name="addressed", servers="nats://127.0.0.1:4222")
    Stream.objects.create(profile=profile, name="orders", subjects=["orders"],
                          subjects_text="orders", read_at=timezone.now())
    settings.READ_AGAIN_AFTER = 600
    read_just_now(profile, JobKind.STREAM_INFO, "orders")  # the row above, as if read
    for i in range(60):  # more than a page, so the section has a pager
        AuditEvent.objects.record("stream.changed", audit.Context(), target_type="stream",
                                  target_name="orders", profile=profile, outcome="succeeded",
                                  message=f"change {i}")
    base = live_server.url  # type: ignore[attr-defined]
    home, profile_page = f"{base}/", f"{base}/profiles/{profile.pk}/"
    stream_page = f"{base}/profiles/{profile.pk}/stream/orders/"

    page.goto(profile_page)
    expect(page.locator("#audit-table tbody tr")).to_have_count(50)
    address_stays(page, profile_page)
    page.click("#audit-table >> text=older →")  # paging the section is not leaving the page
    expect(page.locator("#audit-table tbody tr")).to_have_count(10)
    address_stays(page, profile_page, 1)

    page.goto(stream_page)
    expect(page.locator("#audit-table tbody tr")).to_have_count(50)
    address_stays(page, stream_page)

    back_to(page, profile_page)
    expect(page.locator("h1")).to_contain_text("addressed")
    back_to(page, home)  # where logging in landed
    page.reload()
    assert href(page) == home


def test_the_audit_pages_own_filter_pushes_its_address(page: Page, live_server: object) -> None:
    for i in range(4):
        AuditEvent.objects.record("job.finished", audit.Context(), target_type="stream",
                                  target_name=f"orders-{i}", outcome=("failed", "succeeded")[i % 2])
    base = live_server.url  # type: ignore[attr-defined]
    page.goto("/audit/")
    everything = page.locator("#audit-table tbody tr").count()  # the login's entry too
    page.select_option("select[name=outcome]", "failed")
    expect(page.locator("#audit-table tbody tr")).to_have_count(2)
    wait_until(lambda: href(page) == f"{base}/audit/?outcome=failed", 5,
               lambda: f"the filter's address is not pushed: {href(page)}")
    back_to(page, f"{base}/audit/")
    expect(page.locator("#audit-table tbody tr")).to_have_count(everything)


def test_a_messages_page_reading_by_itself_adds_no_entry_to_the_history(
    page: Page, live_server: object, nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "addressed_msgs", "subjects": ["addressed_msgs.*"]})
    publish(nats_server.url, [(f"addressed_msgs.{i % 2}", b"m") for i in range(60)])
    profile = Profile.objects.create(name="addressed-msgs", servers=nats_server.url,
                                     last_server_version=nats_server.version)
    Stream.objects.create(profile=profile, name="addressed_msgs",
                          subjects=["addressed_msgs.*"], subjects_text="addressed_msgs.*",
                          read_at=timezone.now())
    base = live_server.url  # type: ignore[attr-defined]
    stream_page = f"{base}/profiles/{profile.pk}/stream/addressed_msgs/"
    messages_page = f"{stream_page}messages/"
    rows = page.locator("#messages tr.message-row")

    page.goto(stream_page)
    page.click("a.button >> text=Messages")
    expect(rows).to_have_count(50)  # the page's own first read
    address_stays(page, messages_page, 1)
    page.click("#messages button[rel=next]")  # the user's own browsing moves the address
    expect(rows).to_have_count(10)
    wait_until(lambda: href(page) == f"{messages_page}?seq=51", 5,
               lambda: f"the browse's address is not pushed: {href(page)}")
    back_to(page, messages_page)
    expect(rows).to_have_count(50)
    back_to(page, stream_page)
