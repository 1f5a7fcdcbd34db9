"""A long apply in a real browser, on a broker taking 30 ms a create: its card's bar moves with
an estimate, on a laptop's width and a phone's, and its Stop stops it between streams; the
plan then shows what did not run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from streams import audit
from streams.models import Plan, Profile
from tests.support.nats_server import NatsServer
from tests.support.proxies import PacedProxy
from tests.support.raw_jetstream import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[tuple[NatsServer, PacedProxy]]:
    """A server of the test's own (the streams it is given stay off the shared one), behind a
    proxy passing one create each 30 ms."""
    server = NatsServer.start(tmp_path / "nats", name="memphisadmin-progress")
    with PacedProxy(server.port, "$JS.API.STREAM.CREATE.", every=0.03) as proxy:
        yield server, proxy
    server.stop()


@pytest.mark.parametrize("width", [1280, 390])
def test_a_long_apply_shows_its_progress_and_stops_when_asked(
    page: Page, slow_server: tuple[NatsServer, PacedProxy], width: int,
) -> None:
    server, proxy = slow_server
    page.set_viewport_size({"width": width, "height": 900})
    profile = Profile.objects.create(name="slow", servers=proxy.url,
                                     last_server_version=server.version)
    plan = Plan.objects.propose(profile, {
        f"slow_{n:03d}": {"name": f"slow_{n:03d}", "subjects": [f"slow.{n}"]}
        for n in range(200)}, origin="import", context=audit.Context())
    page.goto(f"/plans/{plan.pk}/")
    expect(page.locator(".plan-counts")).to_contain_text("200 to create")
    page.click("#apply-form button")

    card = page.locator(".job.running")
    expect(card.locator(".estimate")).to_contain_text(" left")
    expect(card.locator("progress")).to_have_attribute("max", "200")
    assert int(card.locator("progress").get_attribute("value") or 0) > 0
    # The card fits the screen: nothing pushes the page sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    card.locator("button", has_text="Stop after the streams under way").click()
    expect(card.locator(".stopping")).to_contain_text("no other starts")

    ended = page.locator(".job.failed")
    expect(ended).to_contain_text("stopped on request after", timeout=30_000)
    expect(ended.locator("button")).to_have_count(0)  # nothing left to stop
    not_run = page.locator("tr.plan-step td.outcome", has_text="not run")
    created = page.locator("tr.plan-step td.outcome", has_text="created")
    expect(not_run.first).to_be_visible()
    assert created.count() + not_run.count() == 200
    assert len(api(server.url, "STREAM.NAMES", {"offset": 0})["streams"] or []) == created.count()
