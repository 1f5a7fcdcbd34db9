"""Test connection, end to end: the view enqueues a job, the real worker connects to a real
nats-server configured for each authentication method, and the job records the outcome."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery.signals import before_task_publish
from django.test import Client
from django.urls import reverse

from streams.models import AuditEvent, AuthMethod, Job, JobStatus, Profile
from tests.support.jobs import wait_for_job
from tests.support.nats_auth import OperatorSetup, make_nkey_user, make_operator_setup
from tests.support.nats_server import NatsServer
from tests.support.network import free_port
from tests.support.tls import TlsMaterial, make_tls_material, tls_server_config

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

NKEY_SEED, NKEY_PUBLIC = make_nkey_user()


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def operator(tmp_path_factory: pytest.TempPathFactory) -> OperatorSetup:
    return make_operator_setup(tmp_path_factory.mktemp("operator"))


AUTH_CONFIGS: dict[str, Callable[[Any], str]] = {
    "user_password": lambda _: 'authorization { users: [{user: "ops", password: "pw-9f3k"}] }',
    "token": lambda _: 'authorization { token: "tok-51ab" }',
    "memphis_token": lambda _: 'authorization { token: "root::conn-77zz" }',
    "nkey": lambda _: f'authorization {{ users: [{{nkey: "{NKEY_PUBLIC}"}}] }}',
}


@pytest.fixture(scope="session")
def auth_servers(
    tmp_path_factory: pytest.TempPathFactory, tls_material: TlsMaterial, operator: OperatorSetup
) -> Iterator[dict[str, NatsServer]]:
    configs = {name: make(None) for name, make in AUTH_CONFIGS.items()}
    configs["tls"] = tls_server_config(tls_material, verify_clients=True)
    configs["creds"] = operator.server_config
    servers = {
        name: NatsServer.start(tmp_path_factory.mktemp(f"nats-{name}"), config=config)
        for name, config in configs.items()
    }
    servers["no_jetstream"] = NatsServer.start(
        tmp_path_factory.mktemp("nats-nojs"), jetstream=False
    )
    servers["domain"] = NatsServer.start(tmp_path_factory.mktemp("nats-domain"), domain="hub")
    yield servers
    for server in servers.values():
        server.stop()


def run_test(client: Client, profile: Profile) -> Job:
    response = client.post(reverse("profile_test", args=[profile.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = Job.objects.get(profile=profile)
    assert f'id="job-{job.pk}"' in response.content.decode()
    return wait_for_job(job.pk)


def test_connection_reports_server_and_account(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer
) -> None:
    profile = make_profile(nats_server)
    job = run_test(client_alice, profile)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["version"] == nats_server.version
    assert job.result["jetstream"] is True
    assert job.result["server_name"] == "memphisadmin-test"
    assert job.result["account"]["limits"]["max_streams"] == -1
    assert job.result["rtt_ms"] > 0
    profile.refresh_from_db()
    assert profile.health.ok is True and profile.health.report["version"] == nats_server.version
    assert profile.last_server_version == nats_server.version
    # The card, polled after the end, shows the version and tells htmx to stop polling.
    card = client_alice.get(reverse("job_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert card.status_code == 286
    assert f"nats-server {nats_server.version}" in card.content.decode()
    actions = list(AuditEvent.objects.filter(job=job).values_list("action", "outcome"))
    assert sorted(actions) == [("job.finished", "succeeded"), ("job.requested", "requested")]


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        ("user_password", {"username": "ops", "password": "pw-9f3k"}),
        ("token", {"token": "tok-51ab"}),
        ("memphis_token", {"username": "root", "token": "conn-77zz"}),
        ("memphis_password", {"username": "ops", "password": "pw-9f3k"}),
        ("nkey", {"nkey_seed": NKEY_SEED}),
    ],
)
def test_each_auth_method_connects(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer], method: str, fields: dict[str, str],
) -> None:
    server = auth_servers["user_password" if method == "memphis_password" else method]
    profile = make_profile(server, auth_method=method, **fields)
    job = run_test(client_alice, profile)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["version"] == server.version


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        ("user_password", {"username": "ops", "password": "wrong"}),
        ("token", {"token": "wrong"}),
        ("memphis_token", {"username": "other", "token": "conn-77zz"}),
        ("nkey", {"nkey_seed": make_nkey_user()[0]}),
    ],
)
def test_wrong_credentials_fail_readably(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer], method: str, fields: dict[str, str],
) -> None:
    profile = make_profile(auth_servers[method], auth_method=method, **fields)
    job = run_test(client_alice, profile)
    assert job.status == JobStatus.FAILED
    assert job.error == "authorization violation: the server rejected the credentials"
    assert job.attempts == 1  # not retried: it would fail the same way
    profile.refresh_from_db()
    assert profile.health.ok is False and "authorization violation" in profile.health.error


def test_creds_file_connects_and_foreign_creds_fail(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer], operator: OperatorSetup, tmp_path: Any,
) -> None:
    good = make_profile(auth_servers["creds"], auth_method=AuthMethod.CREDS,
                        creds=operator.creds_text)
    assert run_test(client_alice, good).status == JobStatus.SUCCEEDED
    stranger = make_operator_setup(tmp_path)
    bad = make_profile(auth_servers["creds"], auth_method=AuthMethod.CREDS,
                       creds=stranger.creds_text)
    job = run_test(client_alice, bad)
    assert job.status == JobStatus.FAILED
    assert "authorization violation" in job.error


def test_tls_with_client_certificate(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer], tls_material: TlsMaterial,
) -> None:
    server = auth_servers["tls"]
    profile = make_profile(
        f"tls://127.0.0.1:{server.port}", tls_ca=tls_material.ca_pem,
        tls_client_cert=tls_material.client_cert_pem, tls_client_key=tls_material.client_key_pem,
    )
    job = run_test(client_alice, profile)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["tls"] is True


def test_tls_with_unknown_ca_fails_readably(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer], tls_material: TlsMaterial, tmp_path: Any,
) -> None:
    other_ca = make_tls_material(tmp_path).ca_pem
    profile = make_profile(
        f"tls://127.0.0.1:{auth_servers['tls'].port}", tls_ca=other_ca,
        tls_client_cert=tls_material.client_cert_pem, tls_client_key=tls_material.client_key_pem,
    )
    job = run_test(client_alice, profile)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("TLS error: certificate verify failed")


def test_jetstream_disabled_is_reported(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer],
) -> None:
    job = run_test(client_alice, make_profile(auth_servers["no_jetstream"]))
    assert job.status == JobStatus.FAILED
    assert job.error.endswith("but JetStream is not enabled")


def test_jetstream_domain_is_used_and_reported(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer],
) -> None:
    job = run_test(client_alice, make_profile(auth_servers["domain"], js_domain="hub"))
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["domain"] == "hub"
    wrong = run_test(client_alice, make_profile(auth_servers["domain"], js_domain="hbu"))
    assert wrong.status == JobStatus.FAILED
    assert wrong.error == ("no JetStream answers at $JS.hbu.API: check the JetStream domain or "
                           "API prefix")


def test_unreachable_port_fails_within_the_bound(
    client_alice: Client, make_profile: Callable[..., Profile]
) -> None:
    port = free_port()  # nothing listens here
    profile = make_profile(f"nats://127.0.0.1:{port}", connect_timeout=1.0)
    started = time.monotonic()
    job = run_test(client_alice, profile)
    elapsed = time.monotonic() - started
    assert job.status == JobStatus.FAILED
    assert job.error == f"cannot reach 127.0.0.1:{port}: connection refused"
    assert job.attempts == 1  # a test reports the first failure instead of retrying
    assert elapsed < 3


def test_silent_server_fails_within_the_connect_timeout(
    client_alice: Client, make_profile: Callable[..., Profile]
) -> None:
    # A TCP listener that accepts and never greets: the client waits for INFO until it gives up.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        profile = make_profile(f"nats://127.0.0.1:{port}", connect_timeout=0.5)
        started = time.monotonic()
        job = run_test(client_alice, profile)
        elapsed = time.monotonic() - started
    assert job.status == JobStatus.FAILED
    assert job.error == f"cannot reach 127.0.0.1:{port}: the server did not answer in time"
    assert elapsed < 2 * 0.5 + 2  # nats-py's two tries, plus the job's way through the queue


def test_secrets_stay_out_of_messages_rows_and_logs(
    client_alice: Client, make_profile: Callable[..., Profile],
    auth_servers: dict[str, NatsServer], celery_worker: Any,
) -> None:
    published: list[str] = []

    def capture(body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        published.append(f"{body!r} {headers!r}")

    good = make_profile(auth_servers["token"], auth_method="token", token="tok-51ab")
    bad = make_profile(auth_servers["token"], auth_method="token", token="wrong-tok-8812")
    before_task_publish.connect(capture)
    try:
        jobs = [run_test(client_alice, good), run_test(client_alice, bad)]
    finally:
        before_task_publish.disconnect(capture)
    assert [job.status for job in jobs] == [JobStatus.SUCCEEDED, JobStatus.FAILED]
    assert len(published) == 2
    for message, job in zip(published, jobs, strict=True):
        assert message.startswith(f"([{job.pk}], {{}}")  # the job id, and nothing else
    stored = [f"{job.params}{job.result}{job.error}" for job in jobs]
    stored += [f"{e.before}{e.after}{e.changes}{e.message}" for e in AuditEvent.objects.all()]
    for text in [*published, *stored, celery_worker.log_text()]:
        assert "tok-51ab" not in text and "wrong-tok-8812" not in text


def test_job_list_filters_by_status_kind_and_profile(
    client_alice: Client, make_profile: Callable[..., Profile], nats_server: NatsServer
) -> None:
    first, second = make_profile(nats_server, name="first"), make_profile(nats_server, name="b")
    run_test(client_alice, first)
    run_test(client_alice, make_profile(f"nats://127.0.0.1:{free_port()}", name="down"))
    Job.objects.create(kind="test_connection", profile=second, profile_name="b")

    def listed(**filters: str) -> list[str]:
        response = client_alice.get(reverse("job_list"), filters, HTTP_HX_REQUEST="true")
        assert "<html" not in response.content.decode()  # htmx gets the table alone
        return sorted(job.profile_name for job in response.context["page"].object_list)

    assert listed() == ["b", "down", "first"]
    assert listed(status="failed") == ["down"]
    assert listed(status="queued", kind="test_connection") == ["b"]
    assert listed(profile="first", status="succeeded") == ["first"]
    assert listed(profile="first", status="failed") == []
