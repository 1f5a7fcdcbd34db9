"""The audit review's filters: each a column the log is indexed on, a date range, and a text
search. The screen, its tabs and the exports share them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters as filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from streams.filters import ListFilter
from streams.models import AuditEvent

OUTCOMES = ("succeeded", "failed", "denied", "requested")
# Known values, offered as suggestions; the filters accept any value (an action's family or
# prefix too).
ACTIONS = (
    "login", "login.locked_out", "logout", "permission.denied", "profile.created",
    "profile.changed", "profile.deleted", "job.requested", "job.finished", "stream.created",
    "stream.changed", "stream.deleted", "stream.purged", "stream.adopted",
    "stream.changed_outside", "advisories.lost", "advisories.rejected", "consumer.created",
    "consumer.changed", "consumer.deleted", "consumer.paused", "consumer.resumed",
    "message.published", "message.deleted", "messages.read", "secrets.rotated",
    "definitions.exported", "audit.exported", "audit.verified", "audit.pruned",
    "audit.head_rebuilt", "team.created", "team.member_added", "team.role_changed",
    "team.member_removed", "user.password_changed", "approval.requested",
    "approval.approved", "approval.rejected", "approval.expired", "team.webhook_changed",
    "job.cancel_requested",
)
# A job's own entries: what was asked and how the job ended. They fold under the entry that
# says more (AuditFilter's `fold`): the change the job wrote (stream.changed, …), or its end.
LIFECYCLE = ("job.requested", "job.finished")
# Who read which messages (settings.AUDIT_MESSAGE_READS): data access, not a change, so the log
# shows these entries only when its action filter names them.
DATA_ACCESS = ("messages.read",)


def _suggested(datalist: str) -> forms.TextInput:
    """A text box offering the known values (the page's <datalist>); any value is accepted."""
    return forms.TextInput(attrs={"list": datalist})


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class AuditFilter(ListFilter):
    actor = filters.CharFilter(field_name="actor_name", label="Actor",
                               widget=_suggested("audit-actors"))
    # An action, a family (`stream`: stream.created, stream.changed, …) or a prefix.
    action = filters.CharFilter(method="filter_action", label="Action",
                                widget=_suggested("audit-actions"))
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
    job = filters.NumberFilter(field_name="job_id", label="Job", min_value=1,
                               widget=forms.HiddenInput)
    # Unticked (absent): a job's requested/finished entries fold under the change it wrote.
    lifecycle = filters.BooleanFilter(method="filter_lifecycle", label="show job entries",
                                      widget=forms.CheckboxInput)

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args: Any, fixed: Iterable[str] = (), fold: bool = True,
                 **kwargs: Any) -> None:
        """`fixed`: filters the screen already decides (a profile's tab has no profile box).
        `fold`: hide job entries that fold under a change, unless an action, a job or "show
        job entries" is asked for (the exports carry every entry)."""
        super().__init__(*args, **kwargs)
        for name in fixed:
            del self.filters[name]
        self.fold = fold

    def filter_queryset(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        events = super().filter_queryset(queryset)
        asked = self.form.cleaned_data
        if not asked.get("action"):
            events = events.exclude(action__in=DATA_ACCESS)
        if not self.fold or any(asked.get(name) for name in ("action", "job", "lifecycle")):
            return events
        # A request folds under its job's end or change; an end under the change. A job
        # that changed nothing shows as its end: a refused attempt, or a read.
        later = AuditEvent.objects.filter(job_id=OuterRef("job_id")).exclude(
            action="job.requested")
        change = later.exclude(action="job.finished")
        return events.exclude(Q(action="job.requested") & Exists(later)).exclude(
            Q(action="job.finished") & Exists(change))

    def filter_action(self, events: QuerySet[AuditEvent], name: str, action: str
                      ) -> QuerySet[AuditEvent]:
        # A whole action is an equality, one range scan of its index; a family or a prefix
        # reads newest first until a page is found.
        if action in ACTIONS:
            return events.filter(action=action)
        return events.filter(action__startswith=action)

    def filter_lifecycle(self, events: QuerySet[AuditEvent], name: str, shown: bool
                         ) -> QuerySet[AuditEvent]:
        return events  # what it changes is the fold, in filter_queryset

    # Entries are in time order (AuditEvent.objects.append never dates one before its
    # predecessor), so a date range is a seq range: two probes of the (at, seq) index, then the
    # same range scan as every other filter instead of a sort of everything in the range.

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
