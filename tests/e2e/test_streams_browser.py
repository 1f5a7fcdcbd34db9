"""The seed's stream, made, changed, purged and deleted in Chromium, each job watched to its
end without a page reload: replication 1 on a single server, 3 on a three-node cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from streams.models import Profile
from tests.support.cluster import start_cluster
from tests.support.nats_server import NatsServer
from tests.support.process import stop_all
from tests.support.raw_jetstream import api, live_config, publish

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "argo_event_source"


@pytest.fixture(scope="session")
def browser_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NatsServer]]:
    servers = start_cluster(tmp_path_factory.mktemp("browser-cluster"), size=3)
    yield servers
    stop_all(servers)


@pytest.fixture(params=["single", "cluster"])
def target(request: pytest.FixtureRequest) -> tuple[list[str], str]:
    """(server URLs, the Replication answer)."""
    if request.param == "single":
        server: NatsServer = request.getfixturevalue("nats_server")
        return [server.url], "1"
    cluster: list[NatsServer] = request.getfixturevalue("browser_cluster")
    return [node.url for node in cluster], "3"


def test_seed_stream_lifecycle_in_the_browser(
    page: Page, make_profile: Callable[..., Profile], target: tuple[list[str], str],
) -> None:
    urls, replicas = target
    api(urls[0], f"STREAM.DELETE.{STREAM}")  # the shared server may have one from elsewhere
    profile = make_profile("\n".join(urls), name=f"browser-{replicas}")
    page.goto(f"/profiles/{profile.pk}/")
    page.evaluate("window.notReloaded = true")
    page.click("button:has-text('Test connection')")
    expect(page.locator(".job .badge")).to_have_text("Succeeded")
    assert page.evaluate("window.notReloaded") is True

    page.click("text=Streams")
    page.click("text=New stream")
    # The seed's defaults are there before anything is typed.
    expect(page.get_by_label("Duplicate tracking time window")).to_have_value("2m0s")
    expect(page.locator("#id_storage")).to_have_value("file")
    expect(page.get_by_label("Allow purging subjects or the entire stream")).to_have_value("yes")
    # The name is checked as it is typed; a size is shown back normalised once left.
    page.get_by_label("Stream Name").fill("argo.event")
    expect(page.locator("#row-name .errorlist")).to_contain_text("Not allowed in a stream name")
    page.get_by_label("Stream Name").fill(STREAM)
    expect(page.locator("#row-name .errorlist")).to_have_count(0)
    page.get_by_label("Max Message Size").fill("1MB")
    page.get_by_label("Max Message Size").blur()
    expect(page.get_by_label("Max Message Size")).to_have_value("1MiB")
    page.get_by_label("Max Message Size").fill("-1")
    page.locator("#id_subjects").fill("foo")
    page.locator("#id_num_replicas").fill(replicas)
    page.evaluate("window.notReloaded = true")
    page.click("button:has-text('Create stream')")
    expect(page.locator(".success")).to_have_text(f"Stream {STREAM} was created",
                                                  timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    live = live_config(urls[0], STREAM)
    assert live["num_replicas"] == int(replicas) and live["subjects"] == ["foo"]

    page.click(f".success a:has-text('{STREAM}')")
    page.click("text=Edit")
    page.locator("#id_max_msgs").fill("1000")
    page.click("button:has-text('Review changes')")
    diff = page.locator("table.diff tbody tr")
    expect(diff).to_have_count(1)
    expect(diff).to_contain_text("Stream Messages Limit")
    expect(diff.locator("td").nth(1)).to_have_text("-1")
    expect(diff.locator("td").nth(3)).to_have_text("1000")
    page.evaluate("window.notReloaded = true")
    page.click("button:has-text('Apply changes')")
    expect(page.locator(".success")).to_have_text(f"Stream {STREAM} was updated",
                                                  timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    assert live_config(urls[0], STREAM)["max_msgs"] == 1000

    publish(urls[0], [("foo", b"one"), ("foo", b"two"), ("foo", b"three")])
    page.click(f".success a:has-text('{STREAM}')")
    page.click("a:has-text('Purge')")
    page.evaluate("window.notReloaded = true")
    page.click("button:has-text('Purge')")
    expect(page.locator(".stream-outcome")).to_contain_text("Purged 3 messages; 0 left",
                                                            timeout=20_000)
    assert page.evaluate("window.notReloaded") is True

    page.click(f"text=Back to {STREAM}")
    page.click("a:has-text('Delete')")
    page.get_by_label("Type the stream name to confirm").fill("argo")
    page.click("button:has-text('Delete')")
    expect(page.locator(".errorlist")).to_contain_text(f"Type {STREAM} exactly.")
    page.get_by_label("Type the stream name to confirm").fill(STREAM)
    page.evaluate("window.notReloaded = true")
    page.click("button:has-text('Delete')")
    expect(page.locator(".stream-outcome")).to_contain_text(f"Stream {STREAM} was deleted",
                                                            timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    assert api(urls[0], f"STREAM.INFO.{STREAM}")["error"]["err_code"] == 10059


def test_a_field_left_for_the_submit_button_is_not_checked_twice(
    page: Page, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    """Leaving a field checks it on the server, except when it is left by pressing Create: the
    create checks every field, and a second request at the moment of the click slows it."""
    profile = make_profile(nats_server.url, name="leaving")
    page.goto(f"/profiles/{profile.pk}/streams/new/")
    checks: list[str] = []
    page.on("request", lambda request: checks.append(request.url)
            if "validate=" in request.url else None)
    page.get_by_label("Max Message Size").fill("1MB")
    page.keyboard.press("Tab")  # left by the keyboard: checked, and shown normalised
    expect(page.get_by_label("Max Message Size")).to_have_value("1MiB")
    assert any("validate=max_msg_size" in url for url in checks)

    checks.clear()
    api(nats_server.url, "STREAM.DELETE.left_by_clicking")
    page.get_by_label("Stream Name").fill("left_by_clicking")
    page.wait_for_timeout(500)  # the name's check as it is typed is over
    checks.clear()
    page.locator("#id_subjects").fill("left.by.clicking")
    page.click("button:has-text('Create stream')")
    expect(page.locator(".success")).to_have_text("Stream left_by_clicking was created",
                                                  timeout=20_000)
    assert checks == []
