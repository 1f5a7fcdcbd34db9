"""Debian's Chromium as the browser tests drive it, and logging in through the page."""

from __future__ import annotations

import re

from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PASSWORD = "browser-pass-4921"  # the `page` fixture's user, "browser"
HOME = re.compile(r"^https?://[^/]+/$")  # where logging in lands: the overview


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
