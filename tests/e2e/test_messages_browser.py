"""A stream's messages in a real browser: the page reads its first messages by itself, pages
with the pager, filters by a subject's count, and a message published from its form shows up."""

from __future__ import annotations

import nats
import pytest
from playwright.sync_api import Page, expect

from streams.models import Profile
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
