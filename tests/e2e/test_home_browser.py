from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from streams.models import Profile
from tests.support.nats_server import NatsServer
from tests.support.scheduler import Scheduler

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_overview_turns_a_stopped_broker_red_by_itself(
    page: Page, make_profile: Callable[..., Profile], tmp_path: Path,
) -> None:
    server = NatsServer.start(tmp_path / "nats")
    profile = make_profile(server, name="east")
    scheduler = Scheduler(tmp_path)
    try:
        page.goto("/")
        card = page.locator(f"#health-{profile.pk}")
        expect(card.locator(".health-head .badge")).to_have_text("up", timeout=30_000)
        expect(card).to_contain_text(f"nats-server {server.version}")
        page.evaluate("window.notReloaded = true")
        server.stop()
        expect(card.locator(".health-head .badge")).to_have_text("down", timeout=60_000)
        expect(card).to_contain_text("connection refused")
        assert page.evaluate("window.notReloaded") is True  # redrawn in place, every 10 s
        card.locator("a", has_text="unmanaged").click()
        expect(page).to_have_url(re.compile(rf"/profiles/{profile.pk}/streams/\?sync=unmanaged$"))
    finally:
        scheduler.stop()
        server.stop()
