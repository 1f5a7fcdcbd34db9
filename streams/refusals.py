"""Refused requests in the audit log, with the flood limit of failed logins (streams.lockout):
a burst of refusals to one user from one address (less than LOGIN_LOCKOUT_MINUTES between
them) writes its first refusal and, if it gets there, one entry at LOGIN_FAILURE_LIMIT with the
count; the others are only counted, on the burst's row, so a script hammering a page it may
not use cannot grow the append-only log."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from streams.audit import Context
from streams.models import AuditEvent, Profile, RefusalBurst

ACTION = "permission.denied"


def record(context: Context, path: str, action: str, reason: str,
           profile: Profile | None = None) -> None:
    who = context.actor.get_username() if context.actor else ""
    now = timezone.now()
    window = timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    with transaction.atomic():
        burst = (RefusalBurst.objects.select_for_update()
                 .filter(actor_name=who, ip=context.ip, last_at__gte=now - window)
                 .order_by("-last_at").first())
        if burst is None:
            RefusalBurst.objects.create(actor_name=who, ip=context.ip, started_at=now,
                                        last_at=now, count=1)
            count = 1
        else:
            RefusalBurst.objects.filter(pk=burst.pk).update(count=F("count") + 1, last_at=now)
            count = burst.count + 1
        if count == 1:
            message = (f"{reason}; further refusals to this user from this address are "
                       f"counted, not logged, until {settings.LOGIN_LOCKOUT_MINUTES} minutes "
                       "pass without one")
        elif count == settings.LOGIN_FAILURE_LIMIT:
            message = (f"{count} refusals in a burst to this user from this address, the "
                       f"last: {reason}")
        else:
            return
        AuditEvent.objects.record(
            ACTION, context, target_type="view", target_name=path[:255], profile=profile,
            outcome="denied", after={"action": action, "refusals": count}, message=message)
    RefusalBurst.objects.filter(last_at__lt=now - window).delete()
