"""Audit entries for logins and logouts (failed logins are recorded where axes counts them,
streams.lockout, so that a flood of them cannot fill the audit log), and the email telling a
team's approvers of a change held for their approval."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.template.defaultfilters import pluralize

from streams import approvals, audit, lockout
from streams.models import Approval, AuditEvent


@receiver(user_logged_in)
def _logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    username = user.get_username()
    # A success right after failures may be a guess that worked: say how many there were.
    failures = lockout.forget_failures(request, username)
    message = f"after {failures} failed login{pluralize(failures)} from this address"
    AuditEvent.objects.record("login", audit.Context.from_request(request), target_type="user",
                              target_name=username, outcome="succeeded",
                              message=message if failures else "")


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:  # request.user is still the user while this signal runs
        AuditEvent.objects.record("logout", audit.Context.from_request(request),
                                  target_type="user", target_name=user.get_username(),
                                  outcome="succeeded")


@receiver(post_save, sender=Approval)
def _approval_asked(sender: Any, instance: Approval, created: bool, **kwargs: Any) -> None:
    if created:
        approvals.tell_approvers(instance)
