"""A stream's messages on real servers (2.15 and 2.9, with and without direct get): browsed
by sequence, subject and time without touching any consumer, shown safely, deleted and
published as audited jobs."""

from __future__ import annotations

import base64
import json
import re
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

from streams.errors import OperationError
from streams.models import AuditEvent, Job, JobKind, JobStatus, Profile
from streams.payloads import MAX_PAYLOAD
from tests.support.jobs import job_from, wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.proxies import LostReplyProxy
from tests.support.raw_jetstream import api, create_raw, in_thread, publish
from tests.support.redis_server import RedisServer
from tests.support.stream_forms import refresh_stream, run_post
from tests.support.versions import VERSIONS, both_versions
from tests.support.waiting import wait_until
from tests.support.web import Web, WebClient
from tests.support.worker import Worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


@pytest.fixture(params=["2.15 direct", "2.15", "2.9 direct", "2.9"])
def case(request: pytest.FixtureRequest) -> tuple[NatsServer, bool]:
    """A server of each version, its stream read by direct gets or through the API (the two
    ways differ by version: batched direct gets came with 2.11)."""
    version, _, direct = request.param.partition(" ")
    return request.getfixturevalue(VERSIONS[version]), bool(direct)


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


def read_message(client: Client, profile: Profile, stream: str, seq: int) -> str:
    """A message's own page, its region as the page's first request loads it."""
    url = reverse("message_detail", args=[profile.pk, stream, seq])
    html = client.post(url, HTTP_HX_REQUEST="true").content.decode()
    if "Reading message" not in html:
        return html
    poll = html.split('hx-get="')[1].split('"')[0].replace("&amp;", "&")

    def read() -> str | None:
        html = client.get(poll, HTTP_HX_REQUEST="true").content.decode()
        return None if "Reading message" in html else html

    return wait_until(read, 20, f"{poll} still reading")


def shown_text(html: str) -> str:
    """What a reader sees: the text, without tags and attributes."""
    return unescape(re.sub(r"<[^>]*>", "", html))


RAW_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


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
    # A moment strictly after message 60 was stored and strictly before 61 is (at the
    # microseconds the browse form takes).
    filled = datetime.now(UTC)
    later = wait_until(lambda: (now := datetime.now(UTC)) > filled and now, 1, "clock stopped")
    wait_until(lambda: datetime.now(UTC) > later, 1, "the clock stood still")
    fill(url, name, [(f"{name}.a", f"m{seq}".encode(), None) for seq in range(61, 121)])
    api(url, f"CONSUMER.DURABLE.CREATE.{name}.reader", {"stream_name": name, "config": {
        "durable_name": "reader", "ack_policy": "explicit"}})
    api(url, f"STREAM.MSG.DELETE.{name}", {"seq": 5})  # a gap
    before = consumer_state(url, name)
    profile = make_profile(server)
    refresh_stream(client_alice, profile, name)

    first = browse(client_alice, profile, name, seq="1")
    assert sequences(first) == [*range(1, 5), *range(6, 52)]
    assert '<code class="payload-line text">m1</code>' in first
    # Each has the Nats-Expected-Stream its publish sent; message 2 its Trace too.
    assert f'<td class="mono nowrap">{name}.b <span class="badge" title="1 header">' in first
    assert f'<td class="mono nowrap">{name}.a <span class="badge" title="2 headers">' in first
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
    assert "Status: 404</div>" in read_message(client_alice, profile, name, 2)
    assert "Status: 503</div>" in read_message(client_alice, profile, name, 3)
    assert sequences(browse(client_alice, profile, name, seq="3")) == [3, 4]
    response = client_alice.post(reverse("message_download", args=[profile.pk, name]),
                                 {"seq": "2"})
    assert response.status_code == 200 and response.content == b"lost"


def test_payloads_are_shown_safely_one_line_each_and_whole_on_their_page(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    url = nats_server.url
    create_raw(url, {"name": "payloads", "subjects": ["payloads"]})
    big = b"x" * (1024 * 1024 - 512)
    fill(url, "payloads", [
        ("payloads", b"<script>alert(1)</script>", None),
        ("payloads", bytes(range(256)), {"X-Evil": "<b>bold</b>"}),
        ("payloads", json.dumps({"order": 7, "items": ["a"]}, indent=4).encode(), None),
        ("payloads", big, None),
    ])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "payloads")
    html = browse(client_alice, profile, "payloads", seq="1")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # One line each: JSON compacted, binary as xxd's first line, a large text's start.
    assert ('<code class="payload-line binary">0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  '
            '................…</code>') in html
    assert ('<code class="payload-line json">{&quot;order&quot;: 7, &quot;items&quot;: '
            '[&quot;a&quot;]}</code>') in html
    assert f'<code class="payload-line text">{"x" * 160}…</code>' in html
    assert len(html) < 40_000  # the megabyte stayed on the server
    job = Job.objects.get(kind=JobKind.MESSAGE_LIST)
    assert len(json.dumps(job.result)) < 20_000

    binary = read_message(client_alice, profile, "payloads", 2)
    assert "<b>bold</b>" not in binary and "X-Evil: &lt;b&gt;bold&lt;/b&gt;" in binary
    assert ("00000000: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................\n"
            "00000010: 1011") in binary
    assert "00000070: 7071 7273 7475 7677 7879 7a7b 7c7d 7e7f  pqrstuvwxyz{|}~.\n" in binary
    pretty = read_message(client_alice, profile, "payloads", 3)
    assert ('<pre id="payload" class="payload json">{\n  &quot;order&quot;: 7,\n  '
            '&quot;items&quot;: [\n    &quot;a&quot;\n  ]\n}</pre>') in pretty
    # The hex of the bytes as sent, indented by 4:
    assert "00000000: 7b0a 2020 2020 226f 7264 6572 223a 2037  {.    &quot;order&quot;: 7" in pretty
    large = read_message(client_alice, profile, "payloads", 4)
    assert "The first 64.0\xa0KB of 1023.5\xa0KB are shown" in large and len(large) < 150_000
    # Any message downloads whole, from its page.
    for seq, body in ((1, b"<script>alert(1)</script>"), (4, big)):
        assert f'<input type="hidden" name="seq" value="{seq}"><button type="submit">Download' \
            in read_message(client_alice, profile, "payloads", seq)
        response = client_alice.post(reverse("message_download", args=[profile.pk, "payloads"]),
                                     {"seq": str(seq)})
        assert response.status_code == 200 and response.content == body
    assert response["Content-Disposition"] == 'attachment; filename="payloads-4.bin"'
    job = Job.objects.filter(kind=JobKind.MESSAGE_GET).latest("pk")
    assert job.status == JobStatus.SUCCEEDED and job.result == {"seq": 4, "size": len(big)}
    gone = client_alice.post(reverse("message_download", args=[profile.pk, "payloads"]),
                             {"seq": "99"})
    failed = Job.objects.filter(kind=JobKind.MESSAGE_GET).latest("pk")
    assert gone.status_code == 302 and "No message 99" in failed.error
    assert "No message 99 in the stream" in read_message(client_alice, profile, "payloads", 99)


def test_a_message_on_its_own_page_is_its_readers_and_for_minutes(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "one", "subjects": ["one"]})
    fill(nats_server.url, "one", [("one", b"private body", {"Api-Key": "hush-hush"})])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "one")
    page_url = reverse("message_detail", args=[profile.pk, "one", 1])
    page = client_alice.get(page_url).content.decode()
    assert f'hx-post="{page_url}" hx-trigger="load"' in page and "private body" not in page
    assert not Job.objects.filter(kind=JobKind.MESSAGE_READ).exists()  # a GET only reads
    html = read_message(client_alice, profile, "one", 1)
    assert "private body" in html and "Api-Key: hush-hush" in html
    job = Job.objects.get(kind=JobKind.MESSAGE_READ)
    bob = Client()
    bob.force_login(get_user_model().objects.create_superuser("bob", "", "bob-pass-5521"))
    other = bob.get(f"{page_url}?job={job.pk}", HTTP_HX_REQUEST="true")
    assert other.status_code == 404 and "private" not in other.content.decode()
    for client in (client_alice, bob):
        for url in (reverse("job_detail", args=[job.pk]), reverse("job_list")):
            assert "hush-hush" not in client.get(url).content.decode()
    assert client_alice.get(reverse("message_detail", args=[profile.pk, "one", 2**64]),
                            ).status_code == 404
    # Forgotten minutes later, body and headers alike; the region says so in place.
    Job.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - Job.MESSAGES_KEPT - timedelta(seconds=1))
    assert Job.objects.forget_expired_messages() == 1
    job.refresh_from_db()
    assert job.result == {"seq": 1, "size": 12}
    expired = client_alice.get(f"{page_url}?job={job.pk}", HTTP_HX_REQUEST="true")
    assert "This message has expired here" in expired.content.decode()
    # Deleting it through the dashboard drops it at once.
    assert "private body" in read_message(client_alice, profile, "one", 1)
    deleted = run(client_alice, "message_delete", profile, "one", {"seq": "1"})
    assert deleted.status == JobStatus.SUCCEEDED, deleted.error
    assert "message" not in Job.objects.filter(kind=JobKind.MESSAGE_READ).latest("pk").result


def test_times_are_shown_in_utc_with_how_long_ago_never_as_raw_iso(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    create_raw(nats_server.url, {"name": "timed", "subjects": ["timed"]})
    fill(nats_server.url, "timed", [("timed", b"now", None)])
    until = datetime.now(UTC) + timedelta(minutes=29, seconds=30)
    api(nats_server.url, "CONSUMER.DURABLE.CREATE.timed.napping", {"stream_name": "timed",
        "config": {"durable_name": "napping", "ack_policy": "explicit",
                   "pause_until": until.isoformat().replace("+00:00", "Z")}})
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "timed")
    stored = api(nats_server.url, "STREAM.MSG.GET.timed", {"seq": 1})["message"]["time"]
    at = datetime.fromisoformat(stored).astimezone(UTC)
    listed = browse(client_alice, profile, "timed", seq="1")
    assert not RAW_ISO.search(shown_text(listed))
    assert f">{at:%H:%M:%S}</time></td>" in listed
    one = shown_text(read_message(client_alice, profile, "timed", 1))
    assert not RAW_ISO.search(one) and f"ago, at {at:%H:%M:%S} UTC" in one
    pause = client_alice.get(reverse("consumer_pause", args=[profile.pk, "timed", "napping"]))
    text = " ".join(shown_text(pause.content.decode()).split())
    assert not RAW_ISO.search(text)
    # Another day's time says its date (in the last half hour of a UTC day, tomorrow's).
    day = "" if until.date() == datetime.now(UTC).date() else f"{until:%Y-%m-%d} "
    assert f"it resumes in 29 minutes, at {day}{until:%H:%M:%S} UTC" in text
    log = shown_text(client_alice.get(reverse("audit_list")).content.decode())
    assert "login" in log and not RAW_ISO.search(log)


def test_a_download_that_outlasts_the_wait_is_offered_on_its_jobs_page(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    settings: Any,
) -> None:
    create_raw(nats_server.url, {"name": "slow_dl", "subjects": ["slow_dl"]})
    fill(nats_server.url, "slow_dl", [("slow_dl", b"the whole message", None)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "slow_dl")
    settings.JOB_WAIT = 0  # the request hands over at once, as a slow read would
    # A job of the connection's still runs: the read waits its turn, so the request is over
    # before it is (a connection runs one job at a time), however fast the worker is.
    now = timezone.now()
    ahead = Job.objects.create(kind=JobKind.STREAM_INFO, profile=profile,
                               profile_name=profile.name, target="slow_dl",
                               status=JobStatus.RUNNING, started_at=now,
                               deadline=now + timedelta(minutes=1))
    url = reverse("message_download", args=[profile.pk, "slow_dl"])
    response = client_alice.post(url, {"seq": "1"})
    job = Job.objects.filter(kind=JobKind.MESSAGE_GET).latest("pk")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    ahead.fail(OperationError("read meanwhile"))  # its end hands the download to a worker
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
        for finished in (now - Job.MESSAGES_KEPT - timedelta(seconds=1), now))
    Job.objects.forget_expired_messages()
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
    for client in (client_alice, bob):
        for page in (reverse("job_detail", args=[job.pk]), reverse("job_list"),
                     reverse("audit_list")):
            response = client.get(page)
            assert response.status_code == 200, page
            assert not any(s in response.content.decode() for s in secrets), page

    # The worker's housekeeping forgets them minutes later; the region says so in place.
    Job.objects.filter(pk=job.pk).update(
        finished_at=timezone.now() - Job.MESSAGES_KEPT - timedelta(seconds=1))
    assert Job.objects.forget_expired_messages() == 1
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
    assert sequences(html) == [1, 2, 3] and len(html) < 50_000
    job = Job.objects.filter(kind=JobKind.MESSAGE_LIST).latest("pk")
    assert len(json.dumps(job.result)) < 50_000
    one = read_message(client_alice, profile, name, 2)
    assert "Small: first</div>" in one and "headers cut at 8 KB" in one and "After: x" not in one
    assert len(one) < 20_000


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
    assert '<code class="payload-line json">{&quot;fine&quot;: 0.5}</code>' in html
    assert f'<pre id="payload" class="payload text">{"[" * 5000}' in read_message(
        client_alice, profile, "json_odd", 1)
    shallow = read_message(client_alice, profile, "json_odd", 2)
    assert f'<pre id="payload" class="payload text">{"[" * 900}' in shallow
    assert len(shallow) < 100_000
    assert '<pre id="payload" class="payload json">{\n  &quot;fine&quot;: 0.5\n}</pre>' in \
        read_message(client_alice, profile, "json_odd", 3)


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
    assert '<code class="payload-line text">{&quot;big&quot;: 1e400}</code>' in html
    assert ('<pre id="payload" class="payload text">{&quot;precise&quot;: '
            '0.10000000000000000001}</pre>') in read_message(client_alice, profile,
                                                             "json_numbers", 2)
    assert ('<pre id="payload" class="payload json">{\n  &quot;fine&quot;: 0.5,\n  '
            '&quot;whole&quot;: 123456789012345678901234567890\n}</pre>') in read_message(
        client_alice, profile, "json_numbers", 3)


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
    assert ('<code class="payload-line text">{&quot;half&quot;: &quot;\\ud800&quot;}</code>'
            in html)
    assert ('<code class="payload-line json">{&quot;pair&quot;: &quot;\U0001f600&quot;}</code>'
            in html)
    assert ('<pre id="payload" class="payload text">{&quot;half&quot;: &quot;\\ud800&quot;}'
            '</pre>') in read_message(client_alice, profile, "json_halves", 1)
    assert ('<pre id="payload" class="payload json">{\n  &quot;pair&quot;: '
            '&quot;\U0001f600&quot;\n}</pre>') in read_message(client_alice, profile,
                                                               "json_halves", 2)


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
    assert "secret body" in browse(client_alice, profile, "outbox", seq="1")
    assert "Order-Id: 42</div>" in read_message(client_alice, profile, "outbox", 1)

    job = run(client_alice, "message_delete", profile, "outbox", {"seq": str(job.result["seq"])})
    assert job.status == JobStatus.SUCCEEDED and job.result["deleted"]
    assert AuditEvent.objects.get(action="message.deleted").after == {
        "seq": 1, "subject": "outbox.test", "size": 11}
    assert api(url, "STREAM.INFO.outbox")["state"]["messages"] == 0


@both_versions
def test_a_delete_acts_only_on_the_message_the_page_showed(
    client_alice: Client, make_profile: Callable[..., Profile], server: NatsServer,
) -> None:
    """Sequences start again in a stream made again: message 1 now is someone else's."""
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
    then = timezone.now() - timedelta(seconds=10)
    Job.objects.filter(pk=job.pk).update(created_at=then, queued_at=then)
    Job.objects.reap_overdue()
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



def test_reading_streams_and_messages_writes_nothing_to_the_audit_log(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
) -> None:
    """The log records changes and security events: a refresh, a browse and a download change
    nothing."""
    create_raw(nats_server.url, {"name": "read_only", "subjects": ["read_only"]})
    fill(nats_server.url, "read_only", [("read_only", b"looked at", None)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "read_only")
    assert "looked at" in browse(client_alice, profile, "read_only", seq="1")
    download = client_alice.post(reverse("message_download", args=[profile.pk, "read_only"]),
                                 {"seq": "1"})
    assert download.status_code == 200 and download.content == b"looked at"
    reads = Job.objects.filter(kind__in=[JobKind.STREAM_INFO, JobKind.MESSAGE_LIST,
                                         JobKind.MESSAGE_GET])
    assert reads.count() == 3 and all(job.status == JobStatus.SUCCEEDED for job in reads)
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"login"}


def run_on(queue: str, job: Job) -> Job:
    from streams.jobs import tasks  # the worker's side: it imports the broker client

    tasks.run_job.apply_async(args=[job.pk], queue=queue)
    return wait_for_job(job.pk)


def test_message_reads_are_recorded_when_the_setting_asks_and_shown_when_filtered(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer,
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    create_raw(nats_server.url, {"name": "watched", "subjects": ["watched"]})
    fill(nats_server.url, "watched", [("watched", b"secret body %d" % seq, None)
                                      for seq in range(1, 4)])
    profile = make_profile(nats_server)
    refresh_stream(client_alice, profile, "watched")
    alice = get_user_model().objects.get(username="alice")
    # A worker of its own with the setting on; the suite's worker keeps it off.
    recording = Worker(redis_server.url, tmp_path, "-Q", "recorded", AUDIT_MESSAGE_READS="true")
    try:
        browsed, downloaded = (run_on("recorded", Job.objects.create(
            kind=kind, profile=profile, profile_name=profile.name, target="watched",
            actor=alice, actor_name="alice", params=params))
            for kind, params in ((JobKind.MESSAGE_LIST, {"start": 2, "count": 50}),
                                 (JobKind.MESSAGE_GET, {"seq": 3})))
    finally:
        recording.stop()
    assert browsed.status == downloaded.status == JobStatus.SUCCEEDED
    entries = AuditEvent.objects.exclude(action="login").order_by("seq")
    assert [(e.action, e.job_id, e.actor_name, e.target_name, e.after, e.outcome)
            for e in entries] == [
        ("messages.read", browsed.pk, "alice", "watched", {"seqs": [2, 3]}, "succeeded"),
        ("messages.read", downloaded.pk, "alice", "watched", {"seqs": [3]}, "succeeded")]
    assert "secret body" not in json.dumps(list(entries.values()), default=str)
    # Data access, not a change: the log's default view leaves it out, its filter shows it.
    row = '<td class="mono">messages.read</td>'
    assert row not in client_alice.get(reverse("audit_list")).content.decode()
    shown = client_alice.get(reverse("audit_list"), {"action": "messages.read"}).content.decode()
    assert shown.count(row) == 2
