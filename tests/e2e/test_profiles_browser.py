from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.nats_server import NatsServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_add_profile_and_test_connection_without_reload(
    page: Page, nats_server: NatsServer
) -> None:
    page.click("text=New connection")
    page.fill("#id_name", "browser-local")
    page.fill("#id_servers", nats_server.url)
    # Only the fields of the chosen authentication method are shown.
    expect(page.locator("#id_password")).to_be_hidden()
    page.select_option("#id_auth_method", "user_password")
    expect(page.locator("#id_password")).to_be_visible()
    expect(page.locator("#id_nkey_seed")).to_be_hidden()
    page.select_option("#id_auth_method", "none")
    page.click("button:has-text('Save')")
    expect(page.locator("h1")).to_contain_text("browser-local")

    page.evaluate("window.notReloaded = true")
    page.click("button:has-text('Test connection')")
    expect(page.locator(".server-version")).to_have_text(f"nats-server {nats_server.version}")
    expect(page.locator(".job .badge")).to_have_text("Succeeded")
    # The header's last-check badge follows, out of band.
    expect(page.locator("h1 .badge")).to_have_text(f"ok · nats-server {nats_server.version}")
    assert page.evaluate("window.notReloaded") is True  # the card updated in place
