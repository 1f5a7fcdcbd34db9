"""Four eyes in Chromium: rita asks to edit a stream on a connection that requires approval,
cannot approve it herself, and arno approves it; the stream changes on the real server only
then."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from streams.models import Profile, Role, Team
from tests.support.browser import HOME, log_in
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, create_raw, live_config
from tests.support.teams import member

pytestmark = pytest.mark.django_db(transaction=True)


def as_user(browser: Browser, live_server: Any, username: str) -> Page:
    page = browser.new_context(base_url=live_server.url).new_page()
    page.set_default_timeout(10_000)
    log_in(page, username, "pass-word-1")
    page.wait_for_url(HOME)
    return page


def test_an_edit_waits_for_another_members_approval(
    browser: Browser, live_server: Any, celery_worker: Any, nats_server: NatsServer,
) -> None:
    api(nats_server.url, "STREAM.DELETE.gated_orders")
    create_raw(nats_server.url, {"name": "gated_orders", "subjects": ["gated.orders.>"]})
    team = Team.objects.create(name="payments")
    profile = Profile.objects.create(name="prod", servers=nats_server.url, team=team,
                                     requires_approval=True,
                                     last_server_version=nats_server.version)
    member(team, "rita", Role.OPERATOR)
    member(team, "arno", Role.ADMIN)

    rita = as_user(browser, live_server, "rita")
    rita.goto(f"/profiles/{profile.pk}/streams/")
    rita.click("button:has-text('Refresh')")
    rita.click("a:has-text('gated_orders')")
    rita.click("text=Edit")
    rita.locator("#id_max_msgs").fill("1000")
    rita.click("button:has-text('Review changes')")
    rita.click("button:has-text('Apply changes')")
    expect(rita.locator(".job .badge")).to_have_text("Awaiting approval")
    rita.click("a:has-text('see the request')")
    expect(rita.locator("h1")).to_contain_text("Edit stream")
    expect(rita.locator("table.diff")).to_contain_text("Stream Messages Limit")
    expect(rita.locator("main")).to_contain_text("Nobody approves or rejects their own request")
    expect(rita.locator("button:has-text('Approve and run')")).to_have_count(0)
    request_url = rita.url
    assert live_config(nats_server.url, "gated_orders")["max_msgs"] == -1

    arno = as_user(browser, live_server, "arno")
    arno.click("nav >> text=Approvals")
    arno.click("section:has-text('Waiting for you') >> a:has-text('Edit stream')")
    assert arno.url == request_url
    arno.fill("#id_comment", "fine by me")
    arno.click("button:has-text('Approve and run')")
    expect(arno.locator("h1 .badge")).to_have_text("Approved")
    expect(arno.locator("dl.facts")).to_contain_text("arno at")
    expect(arno.locator("dl.facts")).to_contain_text("fine by me")
    arno.click("a:has-text('#')")
    expect(arno.locator(".job .badge")).to_have_text("Succeeded", timeout=20_000)
    assert live_config(nats_server.url, "gated_orders")["max_msgs"] == 1000

    rita.reload()
    expect(rita.locator("h1 .badge")).to_have_text("Approved")
