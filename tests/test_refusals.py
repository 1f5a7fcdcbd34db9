"""Every refusal says why where it is asked: without htmx as a whole page, the dashboard's own,
with the reason and the way back; with htmx the reason alone, for the region that asked."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from streams.models import Job, JobKind, JobStatus, Profile, Stream

pytestmark = pytest.mark.django_db

PAGE = '<header class="topbar">'


@pytest.fixture
def refusals(client_alice: Client, user: Any) -> list[tuple[str, dict[str, str], int, str]]:
    """(address, form, status, reason) of each refusal, arranged to happen."""
    profile = Profile.objects.create(name="refusing", servers="nats://127.0.0.1:4222")
    for name, kind in (("orders", ""), ("$memphis_station", "memphis")):
        Stream.objects.create(profile=profile, name=name, system_kind=kind,
                              info={"config": {"name": name}}, read_at=timezone.now())
    taken = Job.objects.create(kind=JobKind.MESSAGE_GET, profile=profile, profile_name="refusing",
                               target="orders", actor=user, status=JobStatus.SUCCEEDED,
                               result={"seq": 1})  # its message taken already

    def at(view: str, *args: Any) -> str:
        return reverse(view, args=[profile.pk, *args])

    return [
        (at("stream_adopt"), {}, 400, "Nothing to adopt: no unmanaged stream was chosen."),
        (at("definitions_export"), {}, 400,
         "Nothing to export: no stream was chosen."),
        (at("message_delete", "orders"), {"seq": "first"}, 400, "Not deleted: "),
        (at("message_download", "orders"), {"seq": "first"}, 400, "Not downloaded: "),
        (at("message_download", "orders") + f"?job={taken.pk}", {}, 410,
         "Downloaded already, not taken in time, or deleted since"),
        (at("message_delete", "$memphis_station"), {"seq": "1"}, 403,
         "This stream&#x27;s messages cannot be changed here."),
    ]


def test_without_htmx_a_refusal_is_a_whole_page_saying_why(
    client_alice: Client, refusals: list[tuple[str, dict[str, str], int, str]],
) -> None:
    for address, form, status, reason in refusals:
        response = client_alice.post(address, form, HTTP_REFERER="http://testserver/profiles/")
        html = response.content.decode()
        assert response.status_code == status, address
        assert PAGE in html and reason in html and 'role="alert"' in html, (address, html)
        assert '<a href="http://testserver/profiles/">← Back</a>' in html
    # The way back leads nowhere else than the dashboard.
    address, form, _, _ = refusals[0]
    elsewhere = client_alice.post(address, form, HTTP_REFERER="https://example.com/")
    assert '<a href="/">← Back</a>' in elsewhere.content.decode()


def test_with_htmx_a_refusal_is_its_reason_alone(
    client_alice: Client, refusals: list[tuple[str, dict[str, str], int, str]],
) -> None:
    for address, form, status, reason in refusals:
        response = client_alice.post(address, form, HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == status, address
        assert reason in html and 'role="alert"' in html and "<html" not in html, html
