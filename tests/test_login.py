"""Login lockout: repeated failures for one user name from one address are refused for a while,
even with the right password, and a flood of them writes two audit entries, not one per try."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Sum
from django.test import Client
from django.urls import reverse

from streams.models import AuditEvent

pytestmark = pytest.mark.django_db

RIGHT, WRONG = "s3cret-pass", "wrong-pass"  # alice's password is the `user` fixture's
ATTACKER, OFFICE = "203.0.113.7", "198.51.100.20"
LIMIT = settings.LOGIN_FAILURE_LIMIT
LOGIN, ADMIN_LOGIN = reverse("login"), reverse("admin:login")


def attempt(client: Client, password: str, *, ip: str = ATTACKER, username: str = "alice",
            path: str = LOGIN, **headers: Any) -> Any:
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip,
                       **headers)


def fail(client: Client, times: int, **kwargs: Any) -> list[int]:
    return [attempt(client, WRONG, **kwargs).status_code for _ in range(times)]


def assert_locked_out(response: Any) -> None:
    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert "_auth_user_id" not in response.wsgi_request.session


def assert_logged_in(response: Any) -> None:
    assert response.status_code == 302
    assert response.wsgi_request.session["_auth_user_id"] == str(
        get_user_model().objects.get(username="alice").pk
    )


def login_entries() -> list[tuple[str, str, str]]:
    return list(AuditEvent.objects.filter(action__startswith="login").order_by("seq")
                .values_list("action", "outcome", "target_name"))


def test_the_right_password_is_refused_after_the_failure_limit(user: Any) -> None:
    client = Client()
    # Wrong passwords re-show the form until the limit; the one that reaches it is refused.
    assert fail(client, LIMIT) == [200] * (LIMIT - 1) + [429]
    response = attempt(client, RIGHT)
    assert_locked_out(response)
    assert f"Wait {settings.LOGIN_LOCKOUT_MINUTES} minutes, then try again" in response.text
    lockout_seconds = settings.LOGIN_LOCKOUT_MINUTES * 60
    assert lockout_seconds - 10 < int(response["Retry-After"]) <= lockout_seconds


def test_the_lockout_is_per_user_and_address(user: Any) -> None:
    get_user_model().objects.create_user("bob", password="bob-pass-5512")
    fail(Client(), LIMIT)
    assert_locked_out(attempt(Client(), RIGHT))
    # The same user from another address, and another user from the same address, get in.
    assert_logged_in(attempt(Client(), RIGHT, ip=OFFICE))
    bob = attempt(Client(), "bob-pass-5512", username="bob")
    assert bob.status_code == 302 and "_auth_user_id" in bob.wsgi_request.session


def test_the_lockout_lifts_after_the_lockout_time(user: Any) -> None:
    fail(Client(), LIMIT)
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes - 1))
    response = attempt(Client(), RIGHT)
    assert_locked_out(response)
    assert "Wait 1 minute, then try again" in response.text
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=2))
    assert_logged_in(attempt(Client(), RIGHT))


def test_attempts_during_a_lockout_do_not_extend_it(user: Any) -> None:
    fail(Client(), LIMIT)
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES - 1)
    )
    assert fail(Client(), 3) == [429] * 3
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=2))
    assert_logged_in(attempt(Client(), RIGHT))


def test_admin_login_is_locked_out_the_same_way(user: Any) -> None:
    admin = {"path": ADMIN_LOGIN}
    assert fail(Client(), LIMIT, **admin)[-1] == 429
    assert_locked_out(attempt(Client(), RIGHT, **admin))
    assert_locked_out(attempt(Client(), RIGHT))  # one count for both login pages
    response = attempt(Client(), RIGHT, ip=OFFICE, **admin)
    assert_logged_in(response)


def test_a_flood_of_failures_writes_two_audit_entries_and_keeps_the_count(user: Any) -> None:
    client = Client()
    fail(client, 60, HTTP_USER_AGENT="flood/1.0")
    assert login_entries() == [("login", "denied", "alice"),
                               ("login.locked_out", "denied", "alice")]
    locked = AuditEvent.objects.get(action="login.locked_out")
    assert locked.ip == ATTACKER and locked.actor_name == "alice"
    assert locked.after == {"failures": LIMIT, "lockout_minutes": settings.LOGIN_LOCKOUT_MINUTES}
    assert f"{LIMIT} failed logins as 'alice' from {ATTACKER}" in locked.message
    counted = AccessAttempt.objects.filter(username="alice", ip_address=ATTACKER)
    assert counted.aggregate(total=Sum("failures_since_start"))["total"] == 60
    # Refused attempts add to the count only: the stored request data stays that of the first
    # LIMIT failures.
    assert counted.get().post_data.count("username=") == LIMIT


def test_a_new_burst_after_a_quiet_lockout_time_is_audited_again(user: Any) -> None:
    fail(Client(), 2)
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES + 1)
    )
    fail(Client(), 2)
    assert login_entries() == [("login", "denied", "alice")] * 2


def test_x_forwarded_for_from_the_client_does_not_move_the_lockout(user: Any) -> None:
    client = Client()
    statuses = [attempt(client, WRONG, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
                for n in range(LIMIT)]
    assert statuses[-1] == 429
    assert_locked_out(attempt(client, RIGHT, HTTP_X_FORWARDED_FOR="192.0.2.200"))
    assert AuditEvent.objects.get(action="login.locked_out").ip == ATTACKER


def test_a_login_after_failures_notes_them_and_starts_the_count_again(user: Any) -> None:
    client = Client()
    fail(client, LIMIT - 1)
    assert_logged_in(attempt(client, RIGHT))
    success = AuditEvent.objects.get(action="login", outcome="succeeded")
    assert success.message == f"after {LIMIT - 1} failed logins from this address"
    assert not AccessAttempt.objects.exists()
    # A fresh count: the next failures are a new burst, audited again, and lock only at LIMIT.
    assert fail(Client(), LIMIT - 1) == [200] * (LIMIT - 1)
    assert login_entries().count(("login", "denied", "alice")) == 2


@pytest.mark.parametrize("page", ["/admin/auth/user/{pk}/change/", "/admin/auth/user/add/",
                                  "/admin/auth/group/add/"])
def test_users_and_groups_are_managed_in_the_admin(client_alice: Client, user: Any,
                                                   page: str) -> None:
    # Its widgets (the password hash, the related-object links) are Django templates only.
    response = client_alice.get(page.format(pk=user.pk))
    assert response.status_code == 200
    assert b'name="_save"' in response.content
