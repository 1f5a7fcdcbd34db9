"""The three lists (jobs, a connection's streams, the audit log) as htmx sees them: a fragment
for htmx, the whole page for a plain load or a history restore, and a Vary header that keeps
caches from mixing the two."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.cache import has_vary_header

from streams.models import Profile

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


@pytest.fixture
def profile() -> Profile:
    return Profile.objects.create(name="listed", servers="nats://127.0.0.1:4222")


def _list_urls(profile: Profile) -> list[str]:
    return [reverse("job_list"), reverse("stream_list", args=[profile.pk]),
            reverse("audit_list"), reverse("profile_audit", args=[profile.pk])]


def test_htmx_gets_the_table_and_a_history_restore_the_whole_page(
    client_alice: Client, profile: Profile,
) -> None:
    for url in _list_urls(profile):
        fragment = client_alice.get(url, headers=HTMX).content.decode()
        assert "<html" not in fragment and "<table" in fragment, url
        # Back to an address htmx pushed but no longer holds: htmx replaces the whole body.
        restored = client_alice.get(url, headers=HISTORY_RESTORE).content.decode()
        assert "<html" in restored and '<header class="topbar">' in restored, url


def test_pages_and_fragments_vary_on_the_htmx_headers(
    client_alice: Client, profile: Profile,
) -> None:
    for url in _list_urls(profile):
        for headers in ({}, HTMX, HISTORY_RESTORE):
            response: Any = client_alice.get(url, headers=headers)
            assert has_vary_header(response, "HX-Request"), (url, headers)
            assert has_vary_header(response, "HX-History-Restore-Request"), (url, headers)
