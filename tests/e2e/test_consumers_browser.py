"""Consumers in a real browser: a bad answer is refused beside its field as it is typed, a
consumer is created from the stream's page, edited through its review, and listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from streams.models import Profile
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, create_raw

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_consumer_created_and_edited_in_the_browser(page: Page, nats_server: NatsServer) -> None:
    url = nats_server.url
    create_raw(url, {"name": "orders_browser", "subjects": ["orders_browser.*"]})
    profile = Profile.objects.create(name="browser-consumers", servers=url,
                                     last_server_version=nats_server.version)
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")
    page.click("#stream-table >> text=orders_browser")
    page.click("text=New consumer")

    page.fill("input[name=max_deliver]", "lots")
    page.press("input[name=max_deliver]", "Tab")  # each field validates itself once left
    expect(page.locator("#row-max_deliver .errorlist")).to_be_visible()
    page.fill("input[name=max_deliver]", "5")
    page.press("input[name=max_deliver]", "Tab")
    expect(page.locator("#row-max_deliver .errorlist")).to_have_count(0)
    page.fill("input[name=durable_name]", "billing")
    page.fill("[name=filter_subjects]", "orders_browser.new")
    page.click("button:has-text('Create consumer')")
    expect(page.locator(".consumer-outcome")).to_contain_text("Consumer billing was created")
    info = api(url, "CONSUMER.INFO.orders_browser.billing")["config"]
    assert (info["max_deliver"], info.get("filter_subject") or info["filter_subjects"][0]) == (
        5, "orders_browser.new")

    page.goto(f"/profiles/{profile.pk}/stream/orders_browser/consumers/billing/edit/")
    page.fill("input[name=max_deliver]", "7")
    page.click("button:has-text('Review changes')")
    expect(page.locator("table.diff")).to_contain_text("7")
    page.click("button:has-text('Apply changes')")
    expect(page.locator(".consumer-outcome")).to_contain_text("was updated")
    assert api(url, "CONSUMER.INFO.orders_browser.billing")["config"]["max_deliver"] == 7
