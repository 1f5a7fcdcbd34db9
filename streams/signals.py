"""Audit entries for logins, logouts and failed logins."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from streams import audit


@receiver(user_logged_in)
def _logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    audit.record("login", audit.Context.from_request(request), target_type="user",
                 target_name=user.get_username(), outcome="succeeded")


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:  # request.user is still the user while this signal runs
        audit.record("logout", audit.Context.from_request(request), target_type="user",
                     target_name=user.get_username(), outcome="succeeded")


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                  **kwargs: Any) -> None:
    # `credentials` has the password already masked by Django; only the user name is kept.
    username = str(credentials.get("username", ""))[:150]
    context = audit.Context.from_request(request) if request is not None else audit.Context()
    audit.record("login", context, target_type="user", target_name=username, outcome="denied",
                 actor_name=username, message="wrong user name or password")
