"""Definitions in a real browser: a stream changed outside shows as drifted with its diff, its
page plans the restore, and Apply puts the definition back."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from streams.models import Profile
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, live_config

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_drifted_stream_is_planned_back_and_applied(page: Page, nats_server: NatsServer) -> None:
    url = nats_server.url
    profile = Profile.objects.create(name="browser-definitions", servers=url,
                                     last_server_version=nats_server.version)
    page.goto(f"/profiles/{profile.pk}/streams/new/")
    page.fill("input[name=name]", "restored_in_browser")
    page.fill("input[name=subjects]", "restored_in_browser.>")
    page.click("button:has-text('Create')")
    expect(page.locator(".stream-outcome")).to_contain_text("was created")
    api(url, "STREAM.UPDATE.restored_in_browser",
        {**live_config(url, "restored_in_browser"), "max_msgs": 5})

    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")
    row = page.locator("tr.stream-row[data-name=restored_in_browser]")
    expect(row.locator(".badge.sync-drifted")).to_have_text("drifted")
    row.locator("a", has_text="restored_in_browser").click()
    expect(page.locator("table.drift")).to_contain_text("Stream Messages Limit")

    page.click("button:has-text('Plan to restore the definition')")
    page.wait_for_url("**/plans/*/")
    step = page.locator("tr.plan-step[data-name=restored_in_browser]")
    expect(step).to_contain_text("update")
    expect(step.locator("table.diff")).to_contain_text("Stream Messages Limit")
    page.click("#apply-form button")
    expect(step.locator("td.outcome")).to_contain_text("updated")
    assert live_config(url, "restored_in_browser")["max_msgs"] == -1
