"""Failed logins. django-axes counts them per (user name, address) and refuses a pair that reached
LOGIN_FAILURE_LIMIT until LOGIN_LOCKOUT_MINUTES have passed; this module gives axes the client
address and the lockout page."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def client_ip(request: HttpRequest) -> str | None:
    """The address of the connection, never a header the client wrote (see settings)."""
    return request.META.get("REMOTE_ADDR") or None


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
