"""The audit review's filters: each a column the log is indexed on, a date range, and a text
search. The screen, its tabs and the exports share them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters as filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from streams.filters import ListFilter
from streams.models import AuditEvent

OUTCOMES = ("succeeded", "failed", "denied", "requested")


def _suggested(datalist: str) -> forms.TextInput:
    """A text box offering the known values (the page's <datalist>); any value is accepted."""
    return forms.TextInput(attrs={"list": datalist})


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class AuditFilter(ListFilter):
    actor = filters.CharFilter(field_name="actor_name", label="Actor",
                               widget=_suggested("audit-actors"))
    action = filters.CharFilter(label="Action", widget=_suggested("audit-actions"))
    target_type = filters.CharFilter(label="Target type", widget=_suggested("audit-target-types"))
    target = filters.CharFilter(field_name="target_name", label="Target")
    profile = filters.CharFilter(field_name="profile_name", label="Profile",
                                 widget=_suggested("audit-profiles"))
    outcome = filters.ChoiceFilter(choices=[(o, o) for o in OUTCOMES], empty_label="any",
                                   label="Outcome")
    since = filters.DateFilter(method="filter_since", label="From",
                               widget=forms.DateInput(attrs={"type": "date"}))
    until = filters.DateFilter(method="filter_until", label="To",
                               widget=forms.DateInput(attrs={"type": "date"}))
    q = filters.CharFilter(method="filter_text", label="Text", widget=forms.SearchInput)

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args: Any, fixed: Iterable[str] = (), **kwargs: Any) -> None:
        """`fixed`: filters the screen already decides (a profile's tab has no profile box)."""
        super().__init__(*args, **kwargs)
        for name in fixed:
            del self.filters[name]

    # Entries are in time order (audit.record never dates one before its predecessor), so a date
    # range is a seq range: two probes of the (at, seq) index, then the same range scan as every
    # other filter instead of a sort of everything in the range.

    def filter_since(self, events: QuerySet[AuditEvent], name: str, day: date
                     ) -> QuerySet[AuditEvent]:
        first = (AuditEvent.objects.filter(at__gte=_midnight(day)).order_by("at", "seq")
                 .values_list("seq", flat=True).first())
        return events.filter(seq__gte=first) if first is not None else events.none()

    def filter_until(self, events: QuerySet[AuditEvent], name: str, day: date
                     ) -> QuerySet[AuditEvent]:
        if day == date.max:  # the day after it does not exist; every entry is before its end
            return events
        last = (AuditEvent.objects.filter(at__lt=_midnight(day) + timedelta(days=1))
                .order_by("-at", "-seq").values_list("seq", flat=True).first())
        return events.filter(seq__lte=last) if last is not None else events.none()

    def filter_text(self, events: QuerySet[AuditEvent], name: str, text: str
                    ) -> QuerySet[AuditEvent]:
        return events.filter(
            Q(target_name__icontains=text) | Q(message__icontains=text)
            | Q(actor_name__icontains=text) | Q(action__icontains=text)
            | Q(profile_name__icontains=text)
        )
