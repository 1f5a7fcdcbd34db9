"""Connection profiles through the views: validation beside each field, write-only encrypted
secrets, audit entries, permissions."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from streams.models import AuditEvent, Job, Profile
from tests.support.nats_auth import make_nkey_user

SECRET = "pw-Zq8XbL2v"
BASE = {"name": "prod", "broker_kind": "nats", "servers": "nats://127.0.0.1:4222",
        "connect_timeout": "2", "auth_method": "none"}


def post_profile(client: Client, url: str, **fields: Any) -> Any:
    return client.post(url, {**BASE, **fields})


@pytest.mark.django_db
def test_create_profile_is_audited_with_secrets_reduced_to_set(client_alice: Client) -> None:
    response = post_profile(client_alice, reverse("profile_create"), auth_method="user_password",
                            username="ops", password=SECRET)
    profile = Profile.objects.get(name="prod")
    assert response.status_code == 302
    assert profile.password == SECRET
    event = AuditEvent.objects.get(action="profile.created")
    assert event.actor_name == "alice"
    assert event.target_name == "prod"
    assert event.after["password"] is True
    assert event.after["username"] == "ops"
    assert event.request_id and event.ip == "127.0.0.1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"servers": "http://x:4222"}, "servers", "use nats:// or tls://"),
        ({"servers": "nats://ops:pw@x:4222"}, "servers", "not in the URL"),
        ({"servers": "nats://x:99999"}, "servers", "1–65535"),
        ({"servers": "nats://x:0"}, "servers", "1–65535"),
        ({"servers": "nats://[::1:4222"}, "servers", "not a URL"),
        ({"servers": "nats://bad host:4222"}, "servers", "not a host name"),
        ({"servers": "\n".join(f"nats://n{i}:4222" for i in range(17))}, "servers",
         "At most 16 servers."),
        ({"description": "d" * 1001}, "description", "at most 1000 characters"),
        ({"name": "prod\u202egnp"}, "name", "Invisible or control characters: U+202E."),
        ({"js_domain": "hub one"}, "js_domain", "one subject token"),
        ({"js_domain": "hub\r\n>"}, "js_domain", "one subject token"),
        ({"js_api_prefix": "$JS.>.API"}, "js_api_prefix", "tokens separated by dots"),
        ({"auth_method": "token", "token": "t" * 4097}, "token", "at most 4096 characters"),
        ({"servers": ""}, "servers", "This field is required."),
        ({"connect_timeout": "0"}, "connect_timeout", "Between 0.1 and 30 seconds."),
        ({"auth_method": "user_password"}, "username", "Required for user and password."),
        ({"auth_method": "token"}, "token", "Required for token."),
        ({"auth_method": "memphis_token", "username": "app"}, "token", "Required for memphis"),
        ({"auth_method": "memphis_password", "username": "app"}, "password", "Required for"),
        ({"auth_method": "memphis_token", "username": "a::b", "token": "t"}, "username", "::"),
        ({"auth_method": "nkey", "nkey_seed": "SUABC"}, "nkey_seed", "starts with SU"),
        ({"auth_method": "creds", "creds": "hello"}, "creds", "BEGIN NATS USER JWT"),
        ({"tls_ca": "not a certificate"}, "tls_ca", "BEGIN CERTIFICATE"),
        ({"tls_client_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
         "tls_client_cert", "needs its certificate"),
    ],
)
def test_bad_input_gets_a_message_beside_the_field(
    client_alice: Client, fields: dict[str, str], field: str, message: str
) -> None:
    response = post_profile(client_alice, reverse("profile_create"), **fields)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    # Rendered inside that field's group, right after its label.
    html = response.content.decode()
    field_group = html[html.index(f'for="id_{field}"'):]
    assert field_group.index("errorlist") < field_group.index(f'id="id_{field}"')
    assert not Profile.objects.exists()


@pytest.mark.django_db
def test_memphis_profile_defaults_to_port_6666(client_alice: Client) -> None:
    post_profile(client_alice, reverse("profile_create"), broker_kind="memphis",
                 servers="broker.internal\nnats://other", auth_method="memphis_token",
                 username="root", token="conn")
    assert Profile.objects.get().server_list == [
        "nats://broker.internal:6666", "nats://other:6666"
    ]


@pytest.mark.django_db
def test_creds_upload_is_validated_and_stored(client_alice: Client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    seed, _ = make_nkey_user()
    creds = ("-----BEGIN NATS USER JWT-----\naaa.bbb.ccc\n------END NATS USER JWT------\n\n"
             f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n")
    upload = SimpleUploadedFile("user.creds", creds.encode())
    response = client_alice.post(reverse("profile_create"),
                                 {**BASE, "auth_method": "creds", "creds_file": upload})
    assert response.status_code == 302
    assert Profile.objects.get().creds == creds.strip()


@pytest.mark.django_db
def test_secrets_are_write_only(client_alice: Client) -> None:
    seed, _ = make_nkey_user()
    profile = Profile.objects.create(name="p", servers="nats://h:4222", auth_method="nkey",
                                     nkey_seed=seed, password=SECRET)
    for page in ("profile_detail", "profile_edit"):
        html = client_alice.get(reverse(page, args=[profile.pk])).content.decode()
        assert seed not in html and SECRET not in html
    edit_html = client_alice.get(reverse("profile_edit", args=[profile.pk])).content.decode()
    assert "Set — leave blank to keep." in edit_html
    assert 'name="clear_nkey_seed"' in edit_html

    # Blank keeps the stored secret; the audit entry shows no secret change.
    post_profile(client_alice, reverse("profile_edit", args=[profile.pk]), name="p",
                 servers="nats://h:4222", auth_method="nkey", description="kept")
    profile.refresh_from_db()
    assert profile.nkey_seed == seed and profile.password == SECRET
    kept = AuditEvent.objects.get(action="profile.changed")
    assert kept.changes == {"description": ["", "kept"]}

    # A new value replaces it, and the audit entry says only "changed".
    new_seed, _ = make_nkey_user()
    post_profile(client_alice, reverse("profile_edit", args=[profile.pk]), name="p",
                 servers="nats://h:4222", auth_method="nkey", nkey_seed=new_seed,
                 clear_password="on", description="kept")
    profile.refresh_from_db()
    assert profile.nkey_seed == new_seed and profile.password == ""
    changed = AuditEvent.objects.filter(action="profile.changed").latest("id")
    assert changed.changes == {"nkey_seed": "changed", "password": "changed"}
    for event in AuditEvent.objects.all():
        text = f"{event.before}{event.after}{event.changes}{event.message}"
        assert seed not in text and new_seed not in text and SECRET not in text


@pytest.mark.django_db(transaction=True)
def test_secrets_are_encrypted_in_the_database(client_alice: Client) -> None:
    post_profile(client_alice, reverse("profile_create"), auth_method="token", token=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM streams_profile")
        (stored,) = cursor.fetchone()
    assert stored.startswith("gAAAA") and SECRET not in stored  # a Fernet token


@pytest.mark.django_db(transaction=True)
def test_secrets_are_not_in_the_sqlite_file(client_alice: Client) -> None:
    post_profile(client_alice, reverse("profile_create"), auth_method="token", token=SECRET)
    db_path = Path(settings.DATABASES["default"]["NAME"])
    files = sorted(str(p) for p in db_path.parent.glob(db_path.name + "*"))
    assert str(db_path) in files
    # Read by another process: closing any descriptor of the database file in this process
    # would drop the POSIX locks SQLite holds on it for the open connection.
    raw = subprocess.run(["cat", *files], capture_output=True, check=True).stdout
    # Neither in the main file nor in the WAL.
    assert b"streams_profile" in raw and SECRET.encode() not in raw


@pytest.mark.django_db
def test_rotate_secrets_re_encrypts_under_the_new_key(client_alice: Client) -> None:
    Profile.objects.create(name="p", servers="nats://h:4222", auth_method="token", token=SECRET)
    old_key = settings.ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    with override_settings(ENCRYPTION_KEYS=[new_key, old_key]):
        call_command("rotate_secrets")
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM streams_profile")
        (stored,) = cursor.fetchone()
    assert Fernet(new_key.encode()).decrypt(stored.encode()).decode() == SECRET
    with override_settings(ENCRYPTION_KEYS=[new_key]):
        assert Profile.objects.get().token == SECRET  # the old key is no longer needed
    assert AuditEvent.objects.filter(action="secrets.rotated", outcome="succeeded").exists()


@pytest.mark.django_db
def test_delete_keeps_the_name_in_audit(client_alice: Client) -> None:
    profile = Profile.objects.create(name="gone", servers="nats://h:4222")
    response = client_alice.post(reverse("profile_delete", args=[profile.pk]))
    assert response.status_code == 302
    assert not Profile.objects.exists()
    event = AuditEvent.objects.get(action="profile.deleted")
    assert event.target_name == "gone" and event.before["name"] == "gone"


@pytest.mark.django_db
def test_every_page_requires_login(client: Client) -> None:
    profile = Profile.objects.create(name="p", servers="nats://h:4222")
    for url in (reverse("profile_list"), reverse("profile_detail", args=[profile.pk]),
                reverse("job_list"), reverse("profile_create")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    assert client.post(reverse("profile_test", args=[profile.pk])).status_code == 302


@pytest.mark.django_db
def test_a_user_in_no_team_sees_no_connection_and_adds_none(client: Client) -> None:
    Profile.objects.create(name="p", servers="nats://h:4222")
    loner = get_user_model().objects.create_user("loner", password="x-pass-123")
    client.force_login(loner)
    page = client.get(reverse("profile_list"))
    assert page.status_code == 200 and ">p<" not in page.content.decode()
    assert "New connection" not in page.content.decode()
    assert client.post(reverse("profile_create"), BASE).status_code == 403
    assert Profile.objects.count() == 1
    denied = AuditEvent.objects.get(action="permission.denied", actor_name="loner")
    assert "you are admin of no team" in denied.message


@pytest.mark.django_db
def test_csrf_is_enforced_for_htmx_posts() -> None:
    """htmx sends the headers of <body hx-headers>: with the page's token an htmx POST goes
    through; without it, it is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_superuser("root", "", "x-pass-123"))
    profile = Profile.objects.create(name="p", servers="nats://h:4222")
    page = client.get(reverse("profile_detail", args=[profile.pk])).content.decode()
    body = re.search(r"<body hx-headers='([^']*)'>", page)
    assert body, page[:1000]
    headers = json.loads(body.group(1))
    url = reverse("profile_test", args=[profile.pk])
    assert client.post(url, HTTP_HX_REQUEST="true").status_code == 403
    assert not Job.objects.exists()
    response = client.post(url, HTTP_HX_REQUEST="true", headers=headers)
    assert response.status_code == 200
    assert Job.objects.get().profile == profile


@pytest.mark.django_db
def test_login_logout_and_failed_login_are_audited(client: Client, user: Any) -> None:
    client.post(reverse("login"), {"username": "alice", "password": "wrong"},
                HTTP_USER_AGENT="pytest-agent")
    client.post(reverse("login"), {"username": "alice", "password": "s3cret-pass"})
    client.post(reverse("logout"))
    events = list(AuditEvent.objects.order_by("id").values_list("action", "outcome",
                                                                  "target_name"))
    assert events == [("login", "denied", "alice"), ("login", "succeeded", "alice"),
                      ("logout", "succeeded", "alice")]
    failed = AuditEvent.objects.get(outcome="denied")
    assert failed.user_agent == "pytest-agent" and "s3cret" not in str(failed.__dict__)
    # The login after it says so (the failure alone is audited: see tests/test_login.py).
    succeeded = AuditEvent.objects.get(action="login", outcome="succeeded")
    assert succeeded.message == "after 1 failed login from this address"


def test_sqlite_runs_in_wal_mode(db: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert sqlite3.sqlite_version_info >= (3, 35)


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_and_hsts(client_alice: Client,
                                                        settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    response = client_alice.get(reverse("profile_list"), secure=True)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy
    assert response["Strict-Transport-Security"] == "max-age=3600"
    # htmx must not inject the inline styles the policy would block.
    assert '"includeIndicatorStyles": false' in response.content.decode()


@pytest.mark.django_db
def test_two_editors_of_one_profile_never_overwrite_each_other(client_alice: Client) -> None:
    post_profile(client_alice, reverse("profile_create"))
    profile = Profile.objects.get(name="prod")
    edit = reverse("profile_edit", args=[profile.pk])
    page = client_alice.get(edit).content.decode()
    loaded_at = page.split('name="loaded_at" value="')[1].split('"')[0]
    first = post_profile(client_alice, edit, servers="nats://first:4222", loaded_at=loaded_at)
    assert first.status_code == 302
    # The second editor's form was loaded before the first saved: refused, not applied.
    second = post_profile(client_alice, edit, description="from the second editor",
                          loaded_at=loaded_at)
    assert second.status_code == 200
    assert "Someone else saved this connection since you opened this form" in \
        second.content.decode()
    profile.refresh_from_db()
    assert profile.server_list == ["nats://first:4222"] and profile.description == ""
    assert AuditEvent.objects.filter(action="profile.changed").count() == 1
