"""A stream's messages in a real browser: the page reads its first messages by itself, pages
with the pager, filters by a subject's count, and a message published from its form shows up;
a page of messages forgotten, or a body too large, says so where it was; the list is one line a
message, and a row opens the message's own page, which shows, copies and downloads it."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import nats
import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

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
    expect(page.locator("#messages code.payload-line.json").first).to_have_text('{"order": 7}')


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
        finished_at=timezone.now() - Job.MESSAGES_KEPT - timedelta(seconds=1))
    Job.objects.forget_expired_messages()
    # The region polls its job by this address: one coming back late finds the page forgotten.
    page.evaluate("address => htmx.ajax('GET', address, {target: '#messages', swap: 'outerHTML'})",
                  f"/profiles/{profile.pk}/stream/expiring/messages/results/?job={job.pk}")
    expired = page.locator("#messages .expired")
    expect(expired).to_contain_text("These results have expired: browse again.")
    expect(page.locator("#messages")).not_to_contain_text("a body for minutes")
    expired.locator("button").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#messages code.payload-line")).to_have_text("a body for minutes")

    page.click("text=Publish a message")
    page.fill("input[name=subject]", "expiring")
    page.fill("textarea[name=payload]", "é" * 600_000)  # 1.2 MB in UTF-8, 3.6 MB as posted
    page.click("button:has-text('Publish')")
    expect(page.locator("#id_payload_error")).to_have_text(
        "The message is 1,200,044 bytes with its headers: the dashboard publishes at most "
        "1,048,576 (nats-server's default max_payload).")
    expect(page.locator("input[name=subject]")).to_have_value("expiring")
    assert not Job.objects.filter(kind=JobKind.MESSAGE_PUBLISH).exists()


def click_on(page: Page, cell: Locator) -> None:
    """A click where a person clicks, the middle of the cell (the row's link covers it)."""
    box = cell.bounding_box()
    assert box
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_the_list_is_one_line_a_message_and_a_row_opens_its_page(
    page: Page, nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "lines", "subjects": ["lines.*"]})
    binary = bytes(range(256)) * 2

    async def fill() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for seq in range(1, 60):  # JSON as applications indent it: eleven lines each
            order = {"order": seq, "customer": f"customer {seq}", "lines": [
                {"sku": f"sku-{n}", "note": "a long note " * 6} for n in range(2)]}
            await js.publish("lines.json", json.dumps(order, indent=2).encode())
        await js.publish("lines.bin", binary, headers={"Trace": "t-60"})
        await nc.close()

    in_thread(fill())
    profile = Profile.objects.create(name="browser-lines", servers=url,
                                     last_server_version=nats_server.version)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")
    page.click("#stream-table >> text=lines")
    page.click("a.button >> text=Messages")
    rows = page.locator("#messages tr.message-row")
    expect(rows).to_have_count(50)
    heights = rows.evaluate_all("rows => rows.map(row => row.getBoundingClientRect().height)")
    assert max(heights) < 40, heights  # one line each
    table = page.locator("#messages table").bounding_box()
    assert table and table["height"] < 3 * 800, table  # 50 in under three screens
    first = rows.first.locator("code.payload-line")
    expect(first).to_have_text(re.compile(r'^\{"order": 1, "customer": "customer 1", "lines": '))
    time = rows.first.locator("time")
    expect(time).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))  # UTC, never raw ISO
    page.screenshot(path="/tmp/pageC-list-1280.png", full_page=False)
    list_address = page.evaluate("location.href")

    # Paging on, then a click anywhere on a row opens that message.
    page.click("#messages button[rel=next]")
    expect(rows).to_have_count(10)
    click_on(page, rows.last.locator("td.preview"))
    page.wait_for_url("**/stream/lines/messages/60/")
    hexdump = page.locator("#payload.hexdump")
    expect(hexdump).to_contain_text(
        "00000000: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................\n"
        "00000010: 1011 1213")
    expect(hexdump).to_contain_text("00000040: 4041 4243 4445 4647 4849 4a4b 4c4d 4e4f  "
                                    "@ABCDEFGHIJKLMNO")
    expect(page.locator("#message dl.facts")).to_contain_text("Trace: t-60")
    expect(page.locator("#message dl.facts")).to_contain_text(
        re.compile(r"ago, at \d\d:\d\d:\d\d UTC"))
    page.screenshot(path="/tmp/pageC-binary-1280.png", full_page=True)
    with page.expect_download() as download:
        page.click("#message button:has-text('Download')")
    assert download.value.path().read_bytes() == binary
    assert download.value.suggested_filename == "lines-60.bin"

    # Back to the list; a JSON message's page, pretty, copied.
    page.go_back()
    expect(rows).to_have_count(10)
    assert page.evaluate("location.href") != list_address  # the page of 51–60, as left
    click_on(page, rows.first.locator("td.preview"))
    page.wait_for_url("**/stream/lines/messages/51/")
    payload = page.locator("#payload.json")
    expect(payload).to_contain_text('"customer": "customer 51",\n  "lines": [')
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy=payload]")
    expect(page.locator("button[data-copy=payload]")).to_have_text("Copied")
    assert json.loads(page.evaluate("navigator.clipboard.readText()"))["order"] == 51
    page.reload()  # read again by a job of its own
    expect(payload).to_contain_text('"order": 51')
    page.set_viewport_size({"width": 390, "height": 800})
    page.screenshot(path="/tmp/pageC-json-390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.go_back()
    expect(rows).to_have_count(10)
    page.screenshot(path="/tmp/pageC-list-390.png", full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
