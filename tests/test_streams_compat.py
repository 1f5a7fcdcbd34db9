"""Compatibility: the oldest supported server (Debian's nats-server 2.9.10) and a three-node
JetStream cluster on loopback, where the seed's answer for Replication is 3. The whole of
test_streams.py also runs against 2.9; here are what only 2.9 or a cluster can show."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from streams.models import Job, JobStatus, Profile, Stream
from tests.support.cluster import restart_node
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api, live_config
from tests.support.stream_forms import create_stream, form_values, refresh_list, run_post
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

@pytest.fixture
def cluster_profile(make_profile: Callable[..., Profile], cluster: list[NatsServer]) -> Profile:
    return make_profile("\n".join(server.url for server in cluster), name="cluster")


def test_a_2_9_server_is_reported_as_2_9_and_offered_only_its_options(
    client_alice: Client, make_profile: Callable[..., Profile], nats_29_server: NatsServer,
) -> None:
    """What Test connection learns from the server decides what the create form offers."""
    assert nats_29_server.version.startswith("2.9.")  # what the binary says of itself
    profile = make_profile(nats_29_server)
    job = run_post(client_alice, reverse("profile_test", args=[profile.pk]), {})
    assert job.status == JobStatus.SUCCEEDED, job.error
    card = client_alice.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    version = f"nats-server {nats_29_server.version}"
    assert f'<dd class="server-version">{version}</dd>' in card.content.decode()
    detail = client_alice.get(reverse("profile_detail", args=[profile.pk])).content.decode()
    assert f"ok · {version}</span>" in detail
    form = client_alice.get(reverse("stream_create", args=[profile.pk])).content.decode()
    assert f"Options of {version}.</p>" in form  # not "version unknown"
    assert "Allow direct get" in form and "Discard New Per Subject" in form  # 2.9's own
    for newer in ("Message Compression", "First Sequence", "Subject Transform Source",
                  "Metadata", "Allow per-message TTL", "Subject delete marker TTL"):
        assert newer not in form


def test_on_2_9_the_edit_form_locks_what_2_9_cannot_change(
    client_alice: Client, make_profile: Callable[..., Profile], nats_29_server: NatsServer,
) -> None:
    profile = make_profile(nats_29_server)
    test = run_post(client_alice, reverse("profile_test", args=[profile.pk]), {})
    assert test.status == JobStatus.SUCCEEDED, test.error
    job = create_stream(client_alice, profile, name="old_one", subjects="old.>")
    assert job.status == JobStatus.SUCCEEDED, job.error
    edit = reverse("stream_edit", args=[profile.pk, "old_one"])
    html = client_alice.get(edit).content.decode()
    assert "Retention cannot change before nats-server 2.10." in html
    assert "Maximum consumers cannot change before nats-server 2.12." in html
    assert "Message Compression" not in html and "Metadata" not in html  # 2.10+ options
    answers = {**form_values(html), "max_bytes": "512MiB", "retention": "interest"}
    review = client_alice.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    assert "<td>Total Stream Size</td><td class=\"mono\">-1</td><td>→</td>" \
           "<td class=\"mono\">512MiB</td>" in review
    assert "Retention Policy</td>" not in review  # locked: the tampered value is ignored
    digest = review.split('name="confirm" value="')[1].split('"')[0]
    update = run_post(client_alice, edit, {**answers, "confirm": digest})
    assert update.status == JobStatus.SUCCEEDED, update.error
    assert live_config(nats_29_server.url, "old_one")["max_bytes"] == 512 << 20


def test_seed_stream_with_replication_3_on_a_cluster(
    client_alice: Client, cluster_profile: Profile, cluster: list[NatsServer],
) -> None:
    test = run_post(client_alice, reverse("profile_test", args=[cluster_profile.pk]), {})
    assert test.status == JobStatus.SUCCEEDED and test.result["cluster_size"] == 3
    html = client_alice.get(reverse("stream_create", args=[cluster_profile.pk])).content
    assert b'<option value="1"><option value="3"></datalist>' in html  # 3 offered here
    job = create_stream(client_alice, cluster_profile, num_replicas="3")
    assert job.status == JobStatus.SUCCEEDED, job.error
    info = job.result["info"]
    assert info["config"]["num_replicas"] == 3
    assert info["cluster"]["leader"] in {"n1", "n2", "n3"}
    assert len(info["cluster"]["replicas"]) == 2
    detail = reverse("stream_detail", args=[cluster_profile.pk, "argo_event_source"])
    run_post(client_alice, reverse("stream_refresh", args=[cluster_profile.pk,
                                                           "argo_event_source"]), {})
    page = client_alice.get(detail).content.decode()
    assert f'<dd class="cluster-leader">{info["cluster"]["leader"]}</dd>' in page
    assert page.count("<dt>Replica</dt>") == 2
    listing = refresh_list(client_alice, cluster_profile)
    assert listing.status == JobStatus.SUCCEEDED
    assert Stream.objects.get(profile=cluster_profile, name="argo_event_source").replicas == 3


def test_test_connection_reports_the_cluster(
    client_alice: Client, cluster_profile: Profile
) -> None:
    client_alice.post(reverse("profile_test", args=[cluster_profile.pk]))
    job = wait_for_job(Job.objects.get(profile=cluster_profile, kind="test_connection").pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["cluster"] == "memphisadmin-test"
    assert job.result["cluster_size"] == 3


def test_streams_a_cluster_cannot_read_are_listed_as_such(
    client_alice: Client, cluster_profile: Profile, cluster: list[NatsServer],
) -> None:
    """It stops the node holding an R1 stream, and brings it back for the tests after it."""
    create_stream(client_alice, cluster_profile, name="lonely", subjects="lonely")
    leader = api(cluster[0].url, "STREAM.INFO.lonely")["cluster"]["leader"]
    holder = next(server for server in cluster if server.name == leader)
    holder.stop()
    try:
        others = [server for server in cluster if server is not holder]
        cluster_profile.servers = "\n".join(server.url for server in others)
        cluster_profile.save()
        seen: list[tuple[str, str, str | None]] = []

        def listed_as_unreadable() -> Stream | None:
            job = refresh_list(client_alice, cluster_profile)
            row = Stream.objects.filter(profile=cluster_profile, name="lonely").first()
            seen.append((job.status, job.error, row and row.status))
            ok = job.status == JobStatus.SUCCEEDED and row is not None and row.status != "ok"
            return row if ok else None

        # The cluster may first elect a new meta leader.
        row = wait_until(listed_as_unreadable, 60, lambda: f"last listing: {seen[-1]}", interval=1)
        assert row.status in {"missing", "offline"}
        html = client_alice.get(reverse("stream_list", args=[cluster_profile.pk])).content.decode()
        assert 'data-name="lonely"' in html and f">{row.status}</span>" in html
    finally:
        restart_node(cluster, holder)
