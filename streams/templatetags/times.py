"""Times as the pages show them (templates/streams/_when.html): in UTC like the rest of the
dashboard, with how long ago or until, whether the value is a datetime or the server's RFC 3339
text (a message's time, a consumer's pause_until), never that raw text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django import template
from django.utils import timezone

register = template.Library()


@dataclass(frozen=True)
class When:
    at: datetime  # in UTC
    future: bool
    today: bool  # the same UTC day as now: the time of day says it


@register.filter
def when(value: str | datetime | None) -> When | None:
    """None for anything that is no time (the template shows the value as it is)."""
    if isinstance(value, str):
        try:  # Python 3.11 reads the server's nanoseconds and "Z"
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    at = (value if timezone.is_aware(value) else value.replace(tzinfo=UTC)).astimezone(UTC)
    now = timezone.now()
    return When(at, at > now, at.date() == now.date())
