"""Failed logins. django-axes counts them per (user name, address) and refuses a pair that reached
LOGIN_FAILURE_LIMIT until LOGIN_LOCKOUT_MINUTES have passed; this module gives axes the client
address, the lockout page and the audit entries.

The audit log is append-only, so a flood of failures must not grow it: a burst (failures of one
pair with less than the lockout time between them) writes its first failure and, if it gets
there, the lockout. The other failures are only counted, on axes' row for the pair
(AccessAttempt.failures_since_start)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_credentials, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F, Max, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.utils import timezone

from streams import audit, metrics
from streams.models import AuditEvent


def client_ip(request: HttpRequest) -> str | None:
    """The address of the connection, never a header the client wrote (see settings)."""
    return request.META.get("REMOTE_ADDR") or None


def lockout_minutes() -> int:
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    return math.ceil(cool_off.total_seconds() / 60)


class AuditedAttempts(AxesDatabaseHandler):
    """axes' database handler, plus the audit entries for failed logins."""

    def user_login_failed(self, sender: Any, credentials: dict[str, Any],
                          request: HttpRequest | None = None, **kwargs: Any) -> None:
        # True here only when AxesStandaloneBackend refused the attempt unchecked (locked out).
        refused = request is not None and request.axes_locked_out
        super().user_login_failed(sender, credentials, request, **kwargs)
        # Django has masked the password in `credentials`; only the user name is kept.
        username = str(credentials.get("username") or "")
        if request is None:  # nothing to count by: record it as every failure used to be
            _record_denied(username, audit.Context())
            return
        if refused:
            _count_refused(username, request.axes_ip_address)
            return
        failures: int | None = request.axes_failures_since_start
        context = audit.Context.from_request(request)
        if failures is None or failures == 1:
            _record_denied(username, context)
        if failures == get_failure_limit(request, credentials):
            _record_locked_out(username, context, failures)


def forget_failures(request: HttpRequest, username: str) -> int:
    """After a successful login: clear the failures counted for this user name from this
    address, and say how many there were."""
    credentials = get_credentials(username)
    failures: int = AxesProxyHandler.get_failures(request, credentials)
    if failures:
        AxesProxyHandler.get_implementation().reset_user_attempts(request, credentials)
    return failures


def lockout_response(request: HttpRequest, original_response: HttpResponse | None,
                     credentials: dict[str, Any] | None) -> HttpResponse:
    """The page a refused login gets (on /login/ and /admin/login/ alike), saying how long to
    wait: the lockout lasts until the lockout time has passed since the pair's last counted
    failure."""
    username = get_client_username(request, credentials) or ""
    last = (AccessAttempt.objects.filter(username=username, ip_address=request.axes_ip_address)
            .aggregate(last=Max("attempt_time"))["last"])
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    now = timezone.now()
    seconds = max(1, math.ceil(((last or now) + cool_off - now).total_seconds()))
    response = render(request, "registration/locked_out.html", {
        "username": username,
        "failure_limit": get_failure_limit(request, credentials),
        "minutes": math.ceil(seconds / 60),
    }, status=429)
    response["Retry-After"] = str(seconds)
    return response


def _record_denied(username: str, context: audit.Context) -> None:
    AuditEvent.objects.record("login", context, target_type="user", target_name=username,
                              outcome="denied", actor_name=username,
                              message="wrong user name or password; further failures from this "
                              f"address are counted, not logged, until {lockout_minutes()} minutes "
                              "pass without one")


def _record_locked_out(username: str, context: audit.Context, failures: int) -> None:
    metrics.LOCKOUTS.inc()
    minutes = lockout_minutes()
    address = context.ip or "an unknown address"
    AuditEvent.objects.record("login.locked_out", context, target_type="user",
                              target_name=username, outcome="denied", actor_name=username,
                              after={"failures": failures, "lockout_minutes": minutes},
                              message=f"{failures} failed login{pluralize(failures)} as "
                              f"{username!r} from {address}: logins as this user from this "
                              f"address are refused for {minutes} minutes")


def _count_refused(username: str, ip_address: str | None) -> None:
    """Count an attempt refused during a lockout on the pair's newest row: the counter only, so
    the row does not grow, and not its time, so the lockout still ends when it was due."""
    newest = (AccessAttempt.objects.filter(username=username, ip_address=ip_address)
              .order_by("-attempt_time").values("pk")[:1])
    AccessAttempt.objects.filter(pk=Subquery(newest)).update(
        failures_since_start=F("failures_since_start") + 1
    )
