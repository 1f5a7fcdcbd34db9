"""A stream's messages on real servers (2.15 and 2.9, with and without direct get): browsed
by sequence, subject and time without touching any consumer, shown safely, deleted and
published as audited jobs."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import nats
import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from streams.jobs import reaper
from streams.models import AuditEvent, Job, JobKind, JobStatus, Profile
from streams.payloads import MAX_PAYLOAD
from tests.support.jobs import job_from, wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.proxies import LostReplyProxy
from tests.support.raw_jetstream import api, create_raw, in_thread, publish
from tests.support.redis_server import RedisServer
from tests.support.stream_forms import refresh_stream, run_post
from tests.support.waiting import wait_until
from tests.support.web import Web, WebClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(params=["2.15 direct", "2.15", "2.9 direct", "2.9"])
def case(request: pytest.FixtureRequest) -> tuple[NatsServer, bool]:
    version, _, direct = request.param.partition(" ")
    server = request.getfixturevalue("nats_server" if version == "2.15" else "nats_29_server")
    return server, bool(direct)


def fill(url: str, stream: str, messages: list[tuple[str, bytes, dict[str, str] | None]]) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        for subject, data, headers in messages:
            await js.publish(subject, data, headers=headers, stream=stream)
        await nc.close()

    in_thread(go())


def browse(client: Client, profile: Profile, stream: str, **fields: str) -> str:
    response = client.post(reverse("message_browse", args=[profile.pk, stream]), fields,
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    if "Reading messages…" not in html:
        return html
    # A slow job: the region polls for it.
    url = html.split('hx-get="')[1].split('"')[0].replace("&amp;", "&")

    def read() -> str | None:
        html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        return None if "Reading messages…" in html else html

    return wait_until(read, 20, f"{url} still reading")


def results_url(profile: Profile, stream: str, job: Job) -> str:
    return f"{reverse('message_results', args=[profile.pk, stream])}?job={job.pk}"


def expired_here(html: str) -> bool:
    """The results region says its messages are gone, and offers to read them again."""
    return "These results have expired:" in html and ">browse again</button>" in html


def sequences(html: str) -> list[int]:
    return [int(part.split('"')[0]) for part in html.split('class="message-row" data-seq="')[1:]]


def consumer_state(url: str, stream: str) -> list[dict[str, Any]]:
    listing = api(url, f"CONSUMER.LIST.{stream}")
    return sorted(({key: info[key] for key in ("name", "delivered", "ack_floor", "num_pending",
                                                "num_ack_pending", "num_redelivered")}
                   for info in listing["consumers"]), key=lambda info: info["name"])


def test_browsing_pages_filters_and_jumps_without_touching_consumers(
    client_alice: Client, make_profile: Callable[..., Profile], case: tuple[NatsServer, bool],
) -> None:
    server, direct = case
    url, name = server.url, f"browse_{'direct' if direct else 'api'}"
    create_raw(url, {"name": name, "subjects": [f"{name}.*"], "allow_direct": direct})
    fill(url, name, [(f"{name}.{'b' if seq % 3 == 0 else 'a'}", f"m{seq}".encode(),
                      {"Trace": f"t{seq}"} if seq == 2 else None) for seq in range(1, 61)])
    time.sleep(0.05)
    later = datetime.now(UTC)
    time.sleep(0.05)
    fill(url, name, [(f"{name}.a", f"m{seq}".encode(), None) for seq in range(61, 121)])
    api(url, f"CONSUMER.DURABLE.CREATE.{name}.reader", {"stream_name": name, "config": {
        "durable_name": "reader", "ack_policy": "explicit"}})
    api(url, f"STREAM.MSG.DELETE.{name}", {"seq": 5})  # a gap
    before = consumer_state(url, name)
    profile = make_profile(server)
    refresh_stream(client_alice, profile, name)

    first = browse(client_alice, profile, name, seq="1")
    assert sequences(first) == [*range(1, 5), *range(6, 52)]
    assert f'<td class="mono">{name}.a</td>' in first
    assert "Trace: t2<br>" in first and '<pre class="payload text">m1</pre>' in first
    assert 'rel="next" hx-post=' in first and "&quot;seq&quot;: &quot;52&quot;" in first
    assert sequences(browse(client_alice, profile, name, seq="52")) == list(range(52, 102))
    assert sequences(browse(client_alice, profile, name, seq="102")) == list(range(102, 121))
    only_b = browse(client_alice, profile, name, seq="1", subject=f"{name}.b")
    assert sequences(only_b) == list(range(3, 61, 3))
    jumped = browse(client_alice, profile, name, at=later.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    assert sequences(jumped)[0] == 61
    # No consumer was made or moved.
    assert consumer_state(url, name) == before
    assert api(url, f"STREAM.INFO.{name}")["state"]["consumer_count"] == 1


def test_a_message_with_a_status_header_of_its_own_is_shown_like_any_other(
    client_alice: Client, make_profile: Callable[..., Profile], case: tuple[NatsServer, bool],
) -> None:
    # A direct get's answer carries the message's headers: its own "Status: 404" once ended
    # the page there, and "Status: 503" failed the job as "JetStream is not enabled".
    server, direct = case
    url, name = server.url, f"status_{'direct' if direct else 'api'}"
    create_raw(url, {"name": name, "subjects": [name], "allow_direct": direct})
    fill(url, name, [(name, b"plain", None), (name, b"lost", {"Status": "404"}),
                     (name, b"", {"Status": "503", "Description": "No Responders"}),
                     (name, b"last", None)])
    profile = make_profile(server)
    refresh_stream(client_alice, profile, name)
    html = browse(client_alice, profile, name, seq="1")
    assert sequences(html) == [1, 2, 3, 4]
    assert "Status: 404<br>" in html and "Status: 503<br>" in html
    assert sequences(browse(client_alice, profile, name, seq="3")) == [3, 4]
    response = client_alice.post(reverse("message_download", args=[profile.pk, name]),
                                 {"seq": "2"})
    assert response.status_code == 200 and response.content == b"lost"


def test_payloads_are_shown_safely_and_large_ones_in_part(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "payloads", "subjects": ["payloads"]})
    big = b"x" * (1024 * 1024 - 512)
    fill(url, "payloads", [
        ("payloads", b"<script>alert(1)</script>", None),
        ("payloads", bytes(range(256)), {"X-Evil": "<b>bold</b>"}),
        ("payloads", json.dumps({"order": 7, "items": ["a"]}).encode(), None),
        ("payloads", big, None),
    ])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "payloads")
    html = browse(client_alice, profile, "payloads", seq="1")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "X-Evil: &lt;b&gt;bold&lt;/b&gt;" in html
    assert '<pre class="payload binary">00 01 02 03' in html
    assert '<pre class="payload json">{\n  &quot;order&quot;: 7,' in html
    assert "1023.5\xa0KB: the start is shown." in html
    assert len(html) < 100_000  # the megabyte stayed on the server
    # Offered for download, whole, once: the job's row does not keep it.
    assert html.count("Download it</button>") == 1
    response = client_alice.post(reverse("message_download", args=[profile.pk, "payloads"]),
                                 {"seq": "4"})
    assert response.status_code == 200 and response.content == big
    assert response["Content-Disposition"] == 'attachment; filename="payloads-4.bin"'
    job = Job.objects.get(kind=JobKind.MESSAGE_GET)
    assert job.status == JobStatus.SUCCEEDED and "data" not in job.result
    gone = client_alice.post(reverse("message_download", args=[profile.pk, "payloads"]),
                             {"seq": "99"})
    failed = Job.objects.filter(kind=JobKind.MESSAGE_GET).latest("pk")
    assert gone.status_code == 302 and "No message 99" in failed.error


def test_a_download_that_outlasts_the_wait_is_offered_on_its_jobs_page(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    settings: Any,
) -> None:
    create_raw(nats_server.url, {"name": "slow_dl", "subjects": ["slow_dl"]})
    fill(nats_server.url, "slow_dl", [("slow_dl", b"the whole message", None)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "slow_dl")
    settings.JOB_WAIT = 0  # the request hands over at once, as a slow read would
    url = reverse("message_download", args=[profile.pk, "slow_dl"])
    response = client_alice.post(url, {"seq": "1"})
    job = Job.objects.filter(kind=JobKind.MESSAGE_GET).latest("pk")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert wait_for_job(job.pk).status == JobStatus.SUCCEEDED
    page = client_alice.get(response["Location"]).content.decode()
    assert f'action="{url}?job={job.pk}"' in page
    # Read for alice: anyone else is neither offered it nor given it.
    bob = Client()
    bob.force_login(get_user_model().objects.create_superuser("bob", "", "bob-pass-5521"))
    assert f"{url}?job=" not in bob.get(response["Location"]).content.decode()
    assert bob.post(f"{url}?job={job.pk}").status_code == 404
    taken = client_alice.post(f"{url}?job={job.pk}")
    assert taken.status_code == 200 and taken.content == b"the whole message"
    assert "data" not in Job.objects.get(pk=job.pk).result
    assert client_alice.post(f"{url}?job={job.pk}").status_code == 410  # once
    create_raw(nats_server.url, {"name": "other_dl", "subjects": ["other_dl"]})
    refresh_stream(client_alice, profile, "other_dl")
    other = reverse("message_download", args=[profile.pk, "other_dl"])
    assert client_alice.post(f"{other}?job={job.pk}").status_code == 404  # not its message


def test_a_download_nobody_takes_is_forgotten(
    make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    profile = make_profile(nats_server)
    now = timezone.now()
    old, recent = (Job.objects.create(
        kind=JobKind.MESSAGE_GET, profile=profile, profile_name=profile.name, target="s",
        status=JobStatus.SUCCEEDED, finished_at=finished,
        result={"seq": 1, "size": 7, "data": base64.b64encode(b"private").decode()})
        for finished in (now - reaper.MESSAGES_KEPT - timedelta(seconds=1), now))
    reaper.forget_messages()
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.result == {"seq": 1, "size": 7} and "data" in recent.result


def test_browsed_messages_are_shown_to_their_reader_only_and_for_minutes(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "private", "subjects": ["private"]})
    fill(nats_server.url, "private", [("private", b"private body", {"Api-Key": "hush-hush"})])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "private")
    assert "private body" in browse(client_alice, profile, "private", seq="1")
    job = Job.objects.get(kind=JobKind.MESSAGE_LIST)
    secrets = ("private body", "hush-hush", base64.b64encode(b"private body").decode())
    bob = Client()
    bob.force_login(get_user_model().objects.create_superuser("bob", "", "bob-pass-5521"))
    missing = bob.get(results_url(profile, "private", job), HTTP_HX_REQUEST="true")
    assert missing.status_code == 404 and not any(s in missing.content.decode() for s in secrets)
    entry = AuditEvent.objects.get(job=job, action="job.finished")
    for client in (client_alice, bob):
        for page in (reverse("job_detail", args=[job.pk]), reverse("job_list"),
                     reverse("audit_list"), reverse("audit_detail", args=[entry.seq])):
            response = client.get(page)
            assert response.status_code == 200, page
            assert not any(s in response.content.decode() for s in secrets), page

    # The worker's housekeeping forgets them minutes later; the region says so in place.
    Job.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - reaper.MESSAGES_KEPT - timedelta(seconds=1))
    assert reaper.forget_messages() == 1
    job.refresh_from_db()
    assert not any(s in json.dumps(job.result) for s in secrets)
    expired = client_alice.get(results_url(profile, "private", job), HTTP_HX_REQUEST="true")
    assert expired.status_code == 200 and expired_here(expired.content.decode())


def test_deleting_a_message_drops_the_browses_that_showed_it(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "shown", "subjects": ["shown"]})
    fill(nats_server.url, "shown", [("shown", b"doomed body", None), ("shown", b"kept", None)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "shown")
    assert "doomed body" in browse(client_alice, profile, "shown", seq="1")
    both = Job.objects.filter(kind=JobKind.MESSAGE_LIST).latest("pk")
    assert sequences(browse(client_alice, profile, "shown", seq="2")) == [2]
    after = Job.objects.filter(kind=JobKind.MESSAGE_LIST).latest("pk")
    deleted = run(client_alice, "message_delete", profile, "shown", {"seq": "1"})
    assert deleted.status == JobStatus.SUCCEEDED and deleted.result["deleted"], deleted.error
    both.refresh_from_db()
    after.refresh_from_db()
    assert "doomed body" not in json.dumps(both.result) and "messages" not in both.result
    assert [message["seq"] for message in after.result["messages"]] == [2]  # not shown there
    html = client_alice.get(results_url(profile, "shown", both),
                            HTTP_HX_REQUEST="true").content.decode()
    assert expired_here(html) and "doomed" not in html
    # A purge through the dashboard takes every message: pages of them go too.
    purged = run_post(client_alice, reverse("stream_purge", args=[profile.pk, "shown"]),
                      {"mode": "all"})
    assert purged.status == JobStatus.SUCCEEDED, purged.error
    after.refresh_from_db()
    assert "messages" not in after.result


def test_huge_headers_are_kept_and_shown_in_part(
    client_alice: Client, make_profile: Callable[..., Profile], case: tuple[NatsServer, bool],
) -> None:
    # JetStream takes up to 64 KiB of headers a message: a page of 50 would be 3 MB.
    server, direct = case
    url, name = server.url, f"big_headers_{'direct' if direct else 'api'}"
    create_raw(url, {"name": name, "subjects": [name], "allow_direct": direct})
    fill(url, name, [(name, b"body", {"Small": "first", "Huge": "h" * 60_000, "After": "x"})
                     for _ in range(3)])
    profile = make_profile(server)
    refresh_stream(client_alice, profile, name)
    html = browse(client_alice, profile, name, seq="1")
    assert sequences(html) == [1, 2, 3] and html.count("Small: first<br>") == 3
    assert html.count("headers cut at 8 KB") == 3 and "After: x" not in html
    assert len(html) < 50_000
    job = Job.objects.filter(kind=JobKind.MESSAGE_LIST).latest("pk")
    assert len(json.dumps(job.result)) < 50_000


def test_json_payloads_too_deep_to_indent_are_shown_as_text(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "json_odd", "subjects": ["json_odd"]})
    fill(url, "json_odd", [
        ("json_odd", b"[" * 5000 + b"]" * 5000, None),  # deeper than the parser goes: a 500
        ("json_odd", b"[" * 900 + b"]" * 900, None),  # 1.8 KB that indents to 1.6 MB
        ("json_odd", b'{"fine": 0.5}', None),
    ])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "json_odd")
    html = browse(client_alice, profile, "json_odd", seq="1")
    assert sequences(html) == [1, 2, 3]
    assert f'<pre class="payload text">{"[" * 5000}' in html
    assert f'<pre class="payload text">{"[" * 900}' in html and len(html) < 100_000
    assert '<pre class="payload json">{\n  &quot;fine&quot;: 0.5\n}</pre>' in html


def test_json_numbers_a_float_cannot_hold_are_shown_as_written(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "json_numbers", "subjects": ["json_numbers"]})
    fill(url, "json_numbers", [
        ("json_numbers", b'{"big": 1e400}', None),  # was shown as Infinity
        ("json_numbers", b'{"precise": 0.10000000000000000001}', None),  # as 0.1
        ("json_numbers", b'{"fine": 0.5, "whole": 123456789012345678901234567890}', None),
    ])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "json_numbers")
    html = browse(client_alice, profile, "json_numbers", seq="1")
    assert '<pre class="payload text">{&quot;big&quot;: 1e400}</pre>' in html
    assert ('<pre class="payload text">{&quot;precise&quot;: 0.10000000000000000001}</pre>'
            in html)
    assert ('<pre class="payload json">{\n  &quot;fine&quot;: 0.5,\n  &quot;whole&quot;: '
            '123456789012345678901234567890\n}</pre>') in html


def test_json_payloads_with_half_a_surrogate_pair_are_shown_as_written(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    # Indented, \\ud800 became a character no page can encode: the browse page was a 500.
    url = nats_server.url
    create_raw(url, {"name": "json_halves", "subjects": ["json_halves"]})
    fill(url, "json_halves", [("json_halves", b'{"half": "\\ud800"}', None),
                              ("json_halves", b'{"pair": "\\ud83d\\ude00"}', None)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "json_halves")
    html = browse(client_alice, profile, "json_halves", seq="1")
    assert '<pre class="payload text">{&quot;half&quot;: &quot;\\ud800&quot;}</pre>' in html
    assert ('<pre class="payload json">{\n  &quot;pair&quot;: &quot;\U0001f600&quot;\n}</pre>'
            in html)


def test_hostile_browse_input_is_refused_beside_its_field(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "hostile", "subjects": ["hostile.>"]})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "hostile")
    for fields, message in (
        ({"seq": "٣"}, "From sequence: A sequence number: digits only."),
        ({"seq": str(2**64)}, "From sequence: From 1 to 18446744073709551615."),
        ({"subject": "a..b"}, "Subject: "),
        ({"at": "yesterday"}, "From time (UTC): Enter a valid date/time."),
    ):
        html = browse(client_alice, profile, "hostile", **fields)
        assert f'<div class="errors" role="alert"><p>{message}' in html, fields
    assert not Job.objects.filter(kind=JobKind.MESSAGE_LIST).exists()


def run(client: Client, view: str, profile: Profile, stream: str, data: dict[str, str]) -> Job:
    response = client.post(reverse(view, args=[profile.pk, stream]), data,
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    return wait_for_job(job_from(response).pk)


def test_publish_and_delete_are_audited_without_the_body(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "outbox", "subjects": ["outbox.*"]})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "outbox")
    job = run(client_alice, "message_publish", profile, "outbox", {
        "subject": "outbox.test", "headers": "Order-Id: 42\nSource: dashboard",
        "payload": "secret body"})
    assert job.status == JobStatus.SUCCEEDED, job.error
    stored = api(url, "STREAM.MSG.GET.outbox", {"seq": job.result["seq"]})["message"]
    assert stored["subject"] == "outbox.test"
    assert "secret body" not in json.dumps(list(AuditEvent.objects.values()), default=str)
    entry = AuditEvent.objects.get(action="message.published")
    assert entry.after == {"subject": "outbox.test", "size": 11, "seq": job.result["seq"]}
    html = browse(client_alice, profile, "outbox", seq="1")
    assert "Order-Id: 42<br>" in html and "secret body" in html

    job = run(client_alice, "message_delete", profile, "outbox", {"seq": str(job.result["seq"])})
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"]
    assert AuditEvent.objects.get(action="message.deleted").after == {
        "seq": 1, "subject": "outbox.test", "size": 11}
    assert api(url, "STREAM.INFO.outbox")["state"]["messages"] == 0


@pytest.mark.parametrize("version", ["nats_server", "nats_29_server"])
def test_a_delete_acts_only_on_the_message_the_page_showed(
    client_alice: Client, make_profile: Callable[..., Profile], request: pytest.FixtureRequest,
    version: str,
) -> None:
    """Sequences start again in a stream made again: message 1 now is someone else's."""
    server = request.getfixturevalue(version)
    url = server.url
    create_raw(url, {"name": "reborn", "subjects": ["reborn.*"]})
    publish(url, [("reborn.old", b"ours")])
    profile = make_profile(server)
    refresh_stream(client_alice, profile, "reborn")
    html = browse(client_alice, profile, "reborn", seq="1")
    shown = html.split('name="time" value="')[1].split('"')[0]
    api(url, "STREAM.DELETE.reborn")
    create_raw(url, {"name": "reborn", "subjects": ["reborn.*"]})
    publish(url, [("reborn.new", b"theirs")])

    job = run(client_alice, "message_delete", profile, "reborn", {"seq": "1", "time": shown})
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("Message 1 is not the one the page showed")
    assert api(url, "STREAM.MSG.GET.reborn", {"seq": 1})["message"]["subject"] == "reborn.new"
    assert AuditEvent.objects.get(action="message.deleted", job=job).outcome == "failed"


def test_a_published_body_and_headers_are_not_kept_on_the_job(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "sent", "subjects": ["sent.*"]})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "sent")
    job = run(client_alice, "message_publish", profile, "sent", {
        "subject": "sent.x", "headers": "Api-Key: hush-hush", "payload": "private body"})
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.params == {"subject": "sent.x", "size": 12}
    page = client_alice.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "hush-hush" not in page and base64.b64encode(b"private body").decode() not in page
    assert api(nats_server.url, "STREAM.MSG.GET.sent", {"seq": 1})["message"]["data"] == (
        base64.b64encode(b"private body").decode())


# The headers block a publish to stream "wide" adds to its body (Nats-Expected-Stream: wide).
WIDE_HEADERS = 40


def post_as_a_browser(client: Client, url: str, fields: dict[str, str]) -> HttpResponse:
    """A form posted urlencoded, as a browser and htmx post it: each byte of UTF-8 beyond ASCII
    takes three ("%E2%82%AC" for "€"). Django's test client posts multipart by default."""
    return client.post(url, urlencode(fields), content_type="application/x-www-form-urlencoded",
                       HTTP_HX_REQUEST="true")


def field_errors(html: str, field: str) -> list[str]:
    """The errors shown beside a field."""
    errors = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return ([unescape(error) for error in re.findall(r"<li>(.*?)</li>", errors.group(1))]
            if errors else [])


def test_a_body_over_max_payload_in_utf8_is_refused_beside_it(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    # 600,000 × "é" passed a limit of a million characters, then Django refused its 3.6 MB of
    # form data with a bare 400; a million "€" (9 MB) dropped the connection under gunicorn.
    create_raw(nats_server.url, {"name": "wide", "subjects": ["wide"]})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "wide")
    url = reverse("message_publish", args=[profile.pk, "wide"])
    for body in ("é" * 600_000, "€" * MAX_PAYLOAD, "x" * MAX_PAYLOAD):
        response = post_as_a_browser(client_alice, url, {"subject": "wide", "payload": body})
        assert response.status_code == 200
        size = len(body.encode()) + WIDE_HEADERS
        assert field_errors(response.content.decode(), "payload") == [
            f"The message is {size:,} bytes with its headers: the dashboard publishes at most "
            f"{MAX_PAYLOAD:,} (nats-server's default max_payload)."], body[0]
    assert not Job.objects.filter(kind=JobKind.MESSAGE_PUBLISH).exists()
    # The most that fits, counted in bytes with the headers, is published whole.
    fits = "é" * ((MAX_PAYLOAD - WIDE_HEADERS) // 2)
    job = wait_for_job(job_from(post_as_a_browser(
        client_alice, url, {"subject": "wide", "payload": fits})).pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    stored = api(nats_server.url, "STREAM.MSG.GET.wide", {"seq": 1})["message"]
    assert base64.b64decode(stored["data"]) == fits.encode()


def test_a_body_too_large_is_answered_beside_it_by_gunicorn_too(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    # A million "€" as a browser posts them, 9 MB: gunicorn dropped the connection while the
    # browser was still sending, so the page showed nothing at all.
    create_raw(nats_server.url, {"name": "wide", "subjects": ["wide"]})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "wide")
    server = Web(tmp_path, redis_server.url)
    try:
        web = WebClient(server.url)
        web.log_in("alice", "s3cret-pass")
        status, html = web.post(reverse("message_publish", args=[profile.pk, "wide"]),
                                {"subject": "wide", "payload": "€" * MAX_PAYLOAD},
                                {"HX-Request": "true"})
    finally:
        server.stop()
    assert status == 200 and field_errors(html, "payload")[0].startswith(
        f"The message is {3 * MAX_PAYLOAD + WIDE_HEADERS:,} bytes with its headers")
    assert not Job.objects.filter(kind=JobKind.MESSAGE_PUBLISH).exists()


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server whose max_payload is below the dashboard's own limit."""
    server = NatsServer.start(tmp_path / "nats", config="max_payload: 65536")
    yield server
    server.stop()


def test_a_message_over_the_servers_own_max_payload_is_refused_with_its_limit(
    client_alice: Client, make_profile: Callable[..., Profile], small_server: NatsServer,
) -> None:
    # The server answers a message over its limit by closing the connection, which read as a
    # lost ack: the worker compares body and headers with the limit the server announced.
    create_raw(small_server.url, {"name": "wide", "subjects": ["wide"]})
    profile = make_profile(small_server)
    refresh_stream(client_alice, profile, "wide")
    job = run(client_alice, "message_publish", profile, "wide",
              {"subject": "wide", "payload": "x" * (65536 - WIDE_HEADERS + 1)})
    assert job.status == JobStatus.FAILED and job.error_field == "payload"
    assert job.error == ("The message is 65,537 bytes with its headers: the server takes at "
                         "most 65,536 (its max_payload).")
    fits = run(client_alice, "message_publish", profile, "wide",
               {"subject": "wide", "payload": "x" * (65536 - WIDE_HEADERS)})
    assert fits.status == JobStatus.SUCCEEDED, fits.error
    assert api(small_server.url, "STREAM.INFO.wide")["state"]["messages"] == 1


def test_a_publish_no_worker_ran_keeps_no_body_either(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    settings: Any,
) -> None:
    # Queued, then failed by the reaper: shown without its body meanwhile, kept without after.
    settings.JOB_QUEUE_TIMEOUT = 5  # here only: the suite's worker still waits 120 s
    profile = make_profile(nats_server)
    job = Job.objects.create(
        kind=JobKind.MESSAGE_PUBLISH, profile=profile, profile_name=profile.name,
        target="sent", params={"subject": "sent.x", "headers": {"Api-Key": "hush-hush"},
                               "size": 12, "data": base64.b64encode(b"private body").decode()})
    page = client_alice.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "sent.x" in page and "hush-hush" not in page and "cHJpdmF0ZSBib2R5" not in page
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=10))
    reaper.reap_overdue()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.params == {"subject": "sent.x", "size": 12}


def test_a_publish_whose_ack_was_lost_says_the_message_may_be_stored(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "unacked", "subjects": ["unacked.*"]})
    with LostReplyProxy(nats_server.port, "unacked.") as proxy:
        profile = make_profile(proxy.url)
        refresh_stream(client_alice, profile, "unacked")
        job = run(client_alice, "message_publish", profile, "unacked",
                  {"subject": "unacked.x", "payload": "once"})
    assert len(proxy.dropped) == 1
    # Stored, so "did not answer in time" would have invited a second copy.
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "it may have been stored all the same" in job.error
    assert api(nats_server.url, "STREAM.INFO.unacked")["state"]["messages"] == 1
    entry = AuditEvent.objects.get(action="message.published", job=job)
    assert entry.outcome == "failed" and "may have been stored" in entry.message


def test_a_delete_whose_answer_was_lost_is_reconciled_and_audited(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "lost_delete", "subjects": ["lost_delete"]})
    fill(nats_server.url, "lost_delete", [("lost_delete", b"doomed", None)])
    with LostReplyProxy(nats_server.port, "$JS.API.STREAM.MSG.DELETE.") as proxy:
        profile = make_profile(proxy.url)
        refresh_stream(client_alice, profile, "lost_delete")
        job = run(client_alice, "message_delete", profile, "lost_delete", {"seq": "1"})
    assert len(proxy.dropped) == 1
    assert api(nats_server.url, "STREAM.INFO.lost_delete")["state"]["messages"] == 0
    # Deleted by the first attempt: said so and audited, not "nothing to delete".
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"], job.error
    entry = AuditEvent.objects.get(action="message.deleted", job=job)
    assert entry.outcome == "succeeded" and entry.after == {
        "seq": 1, "subject": "lost_delete", "size": 6}


def test_publish_refuses_what_the_stream_would_not_take(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "strict", "subjects": ["strict.*"]})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "strict")
    url = reverse("message_publish", args=[profile.pk, "strict"])
    for fields, message in (
        ({"subject": "strict.*"}, "no wildcards"),
        ({"subject": "other.x"}, "Not a subject of this stream"),
        ({"subject": "strict.x", "headers": "Nats-Msg-Id: 1"}, "Nats- headers are the server"),
        ({"subject": "strict.x", "headers": "no colon"}, "Name: value"),
        ({"subject": "strict.x", "payload": "a\x00b"}, "Null characters"),
    ):
        html = client_alice.post(url, fields, HTTP_HX_REQUEST="true").content.decode()
        assert message in html, fields
    assert not Job.objects.filter(kind=JobKind.MESSAGE_PUBLISH).exists()


def test_deleting_from_a_stream_that_denies_it_fails_with_the_reason(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "keeps_all", "subjects": ["keeps_all"], "deny_delete": True})
    fill(url, "keeps_all", [("keeps_all", b"kept", None)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "keeps_all")
    html = browse(client_alice, profile, "keeps_all", seq="1")
    assert "Delete</button>" not in html  # not offered
    job = run(client_alice, "message_delete", profile, "keeps_all", {"seq": "1"})
    assert job.status == JobStatus.FAILED and "denies message deletion" in job.error
    assert api(url, "STREAM.INFO.keeps_all")["state"]["messages"] == 1


def test_browsing_a_replicated_stream_on_a_cluster(
    client_alice: Client, make_profile: Callable[..., Profile], cluster: list[NatsServer],
) -> None:
    url = cluster[0].url
    create_raw(url, {"name": "r_browse", "subjects": ["r_browse.*"], "num_replicas": 3,
                     "allow_direct": True})
    fill(url, "r_browse", [("r_browse.x", f"m{seq}".encode(), None) for seq in range(1, 81)])
    api(url, "CONSUMER.DURABLE.CREATE.r_browse.r_reader", {"stream_name": "r_browse", "config": {
        "durable_name": "r_reader", "ack_policy": "explicit", "num_replicas": 3}})
    before = consumer_state(url, "r_browse")
    profile = make_profile("\n".join(server.url for server in cluster), name="cluster")
    refresh_stream(client_alice, profile, "r_browse")
    assert sequences(browse(client_alice, profile, "r_browse", seq="31")) == list(range(31, 81))
    assert consumer_state(url, "r_browse") == before

