"""Browser tests: Debian's Chromium driven by Playwright against a live server, with the real
worker behind it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, HOME, PASSWORD, log_in

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around
# it are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(
    browser: Browser, live_server: Any, celery_worker: Any, transactional_db: Any
) -> Iterator[Page]:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("browser", "", PASSWORD)
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, "browser", PASSWORD)
    page.wait_for_url(HOME)
    yield page
    context.close()
