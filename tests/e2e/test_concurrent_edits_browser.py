"""Two people edit one stream at once, each in a browser of their own: neither silently undoes
the other's change."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from streams.audit import Context
from streams.models import Job, JobKind, JobStatus, Profile
from tests.support.browser import HOME, log_in
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, create_raw, live_config

pytestmark = pytest.mark.django_db(transaction=True)


def open_edit(page: Page, profile: Profile) -> None:
    page.goto(f"/profiles/{profile.pk}/stream/shared/edit/")
    expect(page.locator("#id_max_msgs")).to_have_value("-1")


def review_and_apply(page: Page) -> None:
    page.click("button:has-text('Review changes')")
    page.click("button:has-text('Apply changes')")
    expect(page.locator(".success")).to_have_text("Stream shared was updated", timeout=20_000)


def test_a_stale_form_changes_only_what_its_user_changed_and_refuses_conflicts(
    page: Page, browser: Browser, live_server: object, nats_server: NatsServer,
    make_profile: Callable[..., Profile],
) -> None:
    api(nats_server.url, "STREAM.DELETE.shared")
    create_raw(nats_server.url, {"name": "shared", "subjects": ["shared"]})
    profile = make_profile(nats_server, last_server_version=nats_server.version)
    read = Job.objects.submit(JobKind.STREAM_INFO, profile, Context(), target="shared")
    assert wait_for_job(read.pk).status == JobStatus.SUCCEEDED

    get_user_model().objects.create_superuser("bob", "", "bob-pass-7731")
    bob = browser.new_context(base_url=str(live_server))
    bob.set_default_timeout(10_000)
    bob_page, bob_second_tab = bob.new_page(), bob.new_page()
    log_in(bob_page, "bob", "bob-pass-7731")
    bob_page.wait_for_url(HOME)
    # Both open the form before either applies anything.
    open_edit(page, profile)
    open_edit(bob_page, profile)
    open_edit(bob_second_tab, profile)

    page.locator("#id_max_msgs").fill("100")
    review_and_apply(page)
    assert live_config(nats_server.url, "shared")["max_msgs"] == 100

    # Bob, on his stale page, changes only the description: his review shows only that, and
    # applying it keeps the limit the other editor set.
    bob_page.locator("#id_description").fill("from bob")
    bob_page.click("button:has-text('Review changes')")
    rows = bob_page.locator("table.diff tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Description")
    bob_page.click("button:has-text('Apply changes')")
    expect(bob_page.locator(".success")).to_have_text("Stream shared was updated",
                                                      timeout=20_000)
    live = live_config(nats_server.url, "shared")
    assert live["max_msgs"] == 100 and live["description"] == "from bob"

    # On another stale page he changes the limit itself: a conflict, not a revert.
    bob_second_tab.locator("#id_max_msgs").fill("5")
    bob_second_tab.click("button:has-text('Review changes')")
    expect(bob_second_tab.locator("#row-max_msgs .errorlist")).to_contain_text(
        "Changed by someone else since you opened this form (now 100): reload to edit it.")
    expect(bob_second_tab.locator("button:has-text('Apply changes')")).to_have_count(0)
    assert live_config(nats_server.url, "shared")["max_msgs"] == 100
    bob.close()
