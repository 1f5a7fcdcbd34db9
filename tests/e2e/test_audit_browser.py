"""The audit log in a real browser: filters swap the table in place and land in the URL; with
JavaScript off the same form and links work as plain page loads."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from streams import audit
from streams.models import AuditEvent
from tests.support.browser import PASSWORD, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def _seed() -> None:
    for i in range(60):
        AuditEvent.objects.record("job.finished", audit.Context(), target_type="stream",
                                  target_name=f"orders-{i}", outcome=("failed", "succeeded")[i % 2],
                                  actor_name="ops")


def test_filters_update_the_table_in_place_and_the_url(page: Page) -> None:
    _seed()
    page.goto("/audit/")
    page.evaluate("window.notReloaded = true")
    page.select_option("select[name=outcome]", "failed")
    expect(page.locator("#audit-table tbody tr")).to_have_count(30)
    expect(page.locator("#audit-table tbody tr").first).to_contain_text("failed")
    assert "outcome=failed" in page.url
    page.fill("input[name=target]", "orders-8")
    page.press("input[name=target]", "Enter")
    expect(page.locator("#audit-table tbody tr")).to_have_count(1)
    expect(page.locator("#audit-table tbody tr")).to_contain_text("orders-8")
    assert page.url.endswith("/audit/?target=orders-8&outcome=failed")
    assert page.evaluate("window.notReloaded") is True
    page.goto("/audit/?action=job.finished")  # a shared link opens the same view
    page.evaluate("window.notReloaded = true")
    page.click("text=older →")
    expect(page.locator("#audit-table tbody tr")).to_have_count(10)
    assert "before=" in page.url and page.evaluate("window.notReloaded") is True


def test_a_family_of_actions_is_one_filter(page: Page) -> None:
    for action in ("stream.created", "stream.changed", "consumer.created", "login"):
        AuditEvent.objects.record(action, audit.Context(), target_type="stream",
                                  target_name="family", outcome="succeeded", actor_name="ops")
    page.goto("/audit/?target=family")
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(4)
    page.fill("input[name=action]", "stream")
    page.press("input[name=action]", "Enter")
    expect(rows).to_have_count(2)
    for i in range(2):
        expect(rows.nth(i)).to_contain_text("stream.")


def test_review_works_without_javascript(browser: Browser, live_server: Any,
                                         page: Page) -> None:
    _seed()
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    plain = context.new_page()
    log_in(plain, "browser", PASSWORD)
    plain.goto("/audit/")
    plain.select_option("select[name=outcome]", "failed")
    plain.click("button:has-text('Filter')")
    expect(plain.locator("#audit-table tbody tr")).to_have_count(30)
    assert "outcome=failed" in plain.url
    plain.click("#audit-table tbody tr >> nth=0 >> a")
    expect(plain.locator("h1")).to_contain_text("job.finished")
    context.close()
