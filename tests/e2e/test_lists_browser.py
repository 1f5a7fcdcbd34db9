"""The lists in a real browser: going back to a filter htmx no longer holds brings back the whole
page, a connection's streams keep the order chosen while being filtered, a subject finds the
streams that would store it, the ticks a person made survive the table's reloads, and a
refusal says why in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from streams import audit
from streams.models import AuditEvent, Profile, Stream, StreamDefinition
from tests.support.jobs import read_just_now
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import create_raw

pytestmark = pytest.mark.django_db(transaction=True)


def test_back_to_a_filter_htmx_no_longer_holds_brings_back_the_whole_page(page: Page) -> None:
    for i in range(12):
        AuditEvent.objects.record("job.finished", audit.Context(), target_type="stream",
                                  target_name=f"orders-{i}", outcome=("failed", "succeeded")[i % 2])
    page.goto("/audit/")
    rows = page.locator("#audit-table tbody tr")
    page.select_option("select[name=outcome]", "failed")
    expect(rows).to_have_count(6)
    page.fill("input[name=target]", "orders-4")
    page.press("input[name=target]", "Enter")
    expect(rows).to_have_count(1)
    # htmx keeps a few pages in sessionStorage; without them it asks the server for the page.
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    with page.expect_response(lambda r: r.request.headers.get("hx-history-restore-request")
                              == "true") as restore:
        page.go_back()
    assert "outcome=failed" in restore.value.url
    expect(rows).to_have_count(6)
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.locator("form.audit-filters")).to_have_count(1)
    expect(page.locator("#audit-table")).to_have_count(1)


def test_filtering_streams_keeps_the_order_chosen_in_the_table(page: Page, settings: Any) -> None:
    profile = Profile.objects.create(name="sorted", servers="nats://127.0.0.1:4222")
    settings.READ_AGAIN_AFTER = 600
    read_just_now(profile)  # the rows below, as if read: the page does not read them again
    for name, size in [("alpha", 30), ("beta", 10), ("gamma", 20), ("other", 40)]:
        Stream.objects.create(profile=profile, name=name, subjects=[name], subjects_text=name,
                              bytes=size, read_at=timezone.now())
    page.goto(f"/profiles/{profile.pk}/streams/")
    names = page.locator("#stream-table tr.stream-row")
    page.click("#stream-table th >> text=Bytes")
    expect(names).to_have_count(4)
    expect(names.first).to_have_attribute("data-name", "beta")
    page.fill("input[name=q]", "a")  # alpha, beta, gamma
    expect(names).to_have_count(3)
    expect(names.first).to_have_attribute("data-name", "beta")
    assert [names.nth(i).get_attribute("data-name") for i in range(3)] == [
        "beta", "gamma", "alpha"]
    assert "sort=bytes" in page.url and "q=a" in page.url


def test_a_subject_finds_the_streams_that_would_store_it(page: Page, settings: Any) -> None:
    profile = Profile.objects.create(name="finding", servers="nats://127.0.0.1:4222")
    settings.READ_AGAIN_AFTER = 600
    read_just_now(profile)
    for name, subjects in [("orders", ["prod.orders.*"]), ("everything", ["prod.>"]),
                           ("billing", ["prod.billing.created"])]:
        Stream.objects.create(profile=profile, name=name, subjects=subjects,
                              subjects_text=" ".join(subjects), read_at=timezone.now())
    page.goto(f"/profiles/{profile.pk}/streams/")
    names = page.locator("#stream-table tr.stream-row")
    expect(names).to_have_count(3)
    page.fill("input[name=subject]", "prod.orders.created")
    expect(names).to_have_count(2)
    assert {names.nth(i).get_attribute("data-name") for i in range(2)} == {"orders",
                                                                         "everything"}


def test_ticks_survive_the_tables_reloads_and_adopt_what_was_ticked(
    page: Page, nats_server: NatsServer,
) -> None:
    for name in ("ticked_alpha", "ticked_beta"):
        create_raw(nats_server.url, {"name": name, "subjects": [f"{name}.>"]})
    profile = Profile.objects.create(name="ticking", servers=nats_server.url,
                                     last_server_version=nats_server.version)
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Refresh")
    page.locator("input[name=q]").press_sequentially("ticked_alpha", delay=40)
    tick = page.locator("tr[data-name=ticked_alpha] input[type=checkbox]")
    tick.check()  # leaving the filter field: its change reloads the table too
    # The list job's reload and the filter's delayed one have both come and gone.
    expect(page.locator("#list-job section.job")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#stream-table tr.stream-row")).to_have_count(1)
    page.wait_for_timeout(1000)
    expect(tick).to_be_checked()
    page.click("text=Adopt ticked")
    expect(page.locator("tr[data-name=ticked_alpha] .badge")).to_have_text("in sync")
    assert StreamDefinition.objects.filter(profile=profile, name="ticked_alpha").exists()
    assert not StreamDefinition.objects.filter(profile=profile, name="ticked_beta").exists()
    expect(page.locator("header.topbar")).to_be_visible()


def test_adopt_with_nothing_ticked_says_why_in_place(page: Page, settings: Any) -> None:
    profile = Profile.objects.create(name="unticked", servers="nats://127.0.0.1:4222")
    settings.READ_AGAIN_AFTER = 600
    read_just_now(profile)
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.click("text=Adopt ticked")
    expect(page.locator("#list-job [role=alert]")).to_have_text(
        "Nothing to adopt: no unmanaged stream was chosen.")
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.locator("#stream-table")).to_be_visible()


def test_a_ticked_unmanaged_stream_exports_its_live_config(page: Page, settings: Any) -> None:
    profile = Profile.objects.create(name="exporting", servers="nats://127.0.0.1:4222")
    settings.READ_AGAIN_AFTER = 600
    read_just_now(profile)
    Stream.objects.create(profile=profile, name="theirs", subjects=["theirs.>"],
                          subjects_text="theirs.>", read_at=timezone.now(),
                          info={"config": {"name": "theirs", "subjects": ["theirs.>"]},
                                "created": "2026-01-01T00:00:00Z"})
    page.goto(f"/profiles/{profile.pk}/streams/")
    page.locator("tr[data-name=theirs] input[type=checkbox]").check()
    with page.expect_download() as download:
        page.click("text=Export ticked")
    assert download.value.suggested_filename == "theirs.json"
    assert json.loads(Path(download.value.path()).read_text()) == {
        "name": "theirs", "subjects": ["theirs.>"]}
