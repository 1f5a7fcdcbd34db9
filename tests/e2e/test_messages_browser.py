"""A stream's messages in a real browser: the page reads its first messages by itself, pages
with the pager, filters by a subject's count, and a message published from its form shows up;
a page of messages forgotten, or a body too large, says so where it was."""

from __future__ import annotations

from datetime import timedelta

import nats
import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from streams.jobs import reaper
from streams.models import Job, JobKind, Profile
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import create_raw, in_thread

pytestmark = pytest.mark.django_db(transaction=True)


def test_browsing_paging_filtering_and_publishing_in_the_browser(
    page: Page, nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "inbox_browser", "subjects": ["inbox_browser.*"],
                     "allow_direct": True})

    async def fill() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for seq in range(1, 61):
            await js.publish(f"inbox_browser.{'odd' if seq % 2 else 'even'}", f"m{seq}".encode())
        await nc.close()

    in_thread(fill())
    profile = Profile.objects.create(name="browser-messages", servers=url,
                                     last_server_version=nats_server.version)
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")
    page.click("#stream-table >> text=inbox_browser")
    page.click("form[hx-post$='/refresh/'] button")  # reads its per-subject counts
    expect(page.locator("#stream-job section.job")).to_have_attribute("data-status",
                                                                       "succeeded")
    page.click("a.button >> text=Messages")

    rows = page.locator("#messages tr.message-row")
    expect(rows).to_have_count(50)  # read by the page's own first request
    expect(rows.first).to_have_attribute("data-seq", "1")
    page.click("#messages button[rel=next]")
    expect(rows).to_have_count(10)
    expect(rows.first).to_have_attribute("data-seq", "51")
    assert "seq=51" in page.url
    page.click(".subject-counts >> text=inbox_browser.even")
    expect(rows).to_have_count(30)
    expect(rows.first).to_have_attribute("data-seq", "2")

    page.click("text=Publish a message")
    page.fill("input[name=subject]", "inbox_browser.odd")
    page.fill("textarea[name=headers]", "Order-Id: 7")
    page.fill("textarea[name=payload]", '{"order": 7}')
    page.click("button:has-text('Publish')")
    outcome = page.locator(".message-outcome")
    expect(outcome).to_contain_text("as message 61")
    outcome.locator("text=show it").click()
    expect(rows.first).to_have_attribute("data-seq", "61")
    expect(page.locator("#messages pre.payload.json")).to_contain_text('"order": 7')


def test_an_expired_browse_and_an_oversized_body_say_so_in_place(
    page: Page, nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "expiring", "subjects": ["expiring"]})

    async def fill() -> None:
        nc = await nats.connect(url)
        await nc.jetstream().publish("expiring", b"a body for minutes")
        await nc.close()

    in_thread(fill())
    profile = Profile.objects.create(name="browser-expiring", servers=url,
                                     last_server_version=nats_server.version)
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")
    page.click("#stream-table >> text=expiring")
    page.click("a.button >> text=Messages")
    rows = page.locator("#messages tr.message-row")
    expect(rows).to_have_count(1)
    job = Job.objects.filter(kind=JobKind.MESSAGE_LIST).latest("pk")
    Job.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - reaper.MESSAGES_KEPT - timedelta(seconds=1))
    reaper.forget_messages()
    # The region polls its job by this address: one coming back late finds the page forgotten.
    page.evaluate("address => htmx.ajax('GET', address, {target: '#messages', swap: 'outerHTML'})",
                  f"/profiles/{profile.pk}/stream/expiring/messages/results/?job={job.pk}")
    expired = page.locator("#messages .expired")
    expect(expired).to_contain_text("These results have expired: browse again.")
    expect(page.locator("#messages")).not_to_contain_text("a body for minutes")
    expired.locator("button").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#messages pre.payload")).to_have_text("a body for minutes")

    page.click("text=Publish a message")
    page.fill("input[name=subject]", "expiring")
    page.fill("textarea[name=payload]", "é" * 600_000)  # 1.2 MB in UTF-8, 3.6 MB as posted
    page.click("button:has-text('Publish')")
    expect(page.locator("#id_payload_error")).to_have_text(
        "The message is 1,200,044 bytes with its headers: the dashboard publishes at most "
        "1,048,576 (nats-server's default max_payload).")
    expect(page.locator("input[name=subject]")).to_have_value("expiring")
    assert not Job.objects.filter(kind=JobKind.MESSAGE_PUBLISH).exists()
