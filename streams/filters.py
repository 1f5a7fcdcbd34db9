"""The lists' filters, declared: what each list can be narrowed and sorted by, the form that
shows them, and the query a link needs to keep them (the audit log's: streams.audit.filters)."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django import forms
from django.db.models import QuerySet
from django.http import QueryDict
from django_filters.fields import BaseCSVField
from django_filters.widgets import BaseCSVWidget

from streams import naming, policy
from streams.models import Job, JobKind, JobStatus, Stream, StreamSync


class ListFilter(filters.FilterSet):
    """A list's filters, and the ones in use for links and the address bar."""

    @property
    def in_use(self) -> QueryDict:
        """The filters given a value, in the form's order. htmx sends every field of a form,
        empty ones too; links and the address bar carry only these."""
        query = QueryDict(mutable=True)
        for name in self.form.fields:
            if value := self.data.get(name):
                query[name] = value
        return query


class JobFilter(ListFilter):
    status = filters.ChoiceFilter(choices=JobStatus.choices, empty_label="any", label="Status")
    kind = filters.ChoiceFilter(choices=JobKind.choices, empty_label="any", label="Kind")
    # By name, not by row: a deleted connection's jobs keep its name and stay findable.
    profile = filters.CharFilter(field_name="profile_name", label="Profile")

    class Meta:
        model = Job
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        user = self.request.user if self.request else None
        names = policy.profiles(user).values_list("name", flat=True)
        self.filters["profile"].extra["widget"] = forms.Select(
            choices=[("", "any"), *((name, name) for name in names)])

    def filter_queryset(self, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if not self.form.cleaned_data.get("kind"):  # the scheduler's checks only when asked
            queryset = queryset.asked()
        return super().filter_queryset(queryset)


# The streams table's columns, each a sort (and its reverse, "-column").
STREAM_COLUMNS = [
    ("name", "Name"), ("subjects_text", "Subjects"), ("storage", "Storage"),
    ("replicas", "Replicas"), ("retention", "Retention"), ("messages", "Messages"),
    ("bytes", "Bytes"), ("consumers", "Consumers"), ("first_seq", "First seq"),
    ("first_ts", "First time"), ("last_seq", "Last seq"), ("last_ts", "Last time"),
    ("sync", "Definition"),
]
MANAGED = "managed"  # any state but unmanaged


class OneColumn(BaseCSVField):
    """An OrderingFilter's value is a comma-separated list; a table sorts by one column, and
    more is an order it does not know (so by name)."""

    def clean(self, value: Any) -> list[str] | None:
        columns = super().clean(value)
        if columns and len(columns) > 1:
            raise forms.ValidationError("Sort by one column.", code="invalid_choice")
        return columns


class StreamOrder(filters.OrderingFilter):
    """`?sort=bytes`, `?sort=-name`: by one column, equal values in name order."""

    base_field_class = OneColumn

    def filter(self, qs: QuerySet[Stream], value: list[str] | None) -> QuerySet[Stream]:
        return super().filter(qs, [*value, "name"]) if value else qs


class InStreamFilters(BaseCSVWidget, forms.HiddenInput):
    """The order in use: hidden in the table, which the column headers re-render, yet part of
    the filter form (by its id), so filtering keeps the order last chosen. What was asked stays
    one hidden value as it came, several columns too."""

    def __init__(self) -> None:
        super().__init__(attrs={"form": "stream-filters"})

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None,
               renderer: Any = None) -> str:
        text = ",".join(value) if isinstance(value, list) else value
        return forms.HiddenInput.render(self, name, text, attrs, renderer)


class StreamFilter(ListFilter):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name",
                           widget=forms.TextInput(attrs={"placeholder": "filter by name"}))
    # As `nats stream find --subject`: the streams that would store a subject, or whose
    # subjects a wildcard overlaps. Plain text search is the next filter.
    subject = filters.CharFilter(
        method="filter_subject", label="Subject",
        widget=forms.TextInput(attrs={"placeholder": "subject they store: orders.*"}))
    subject_text = filters.CharFilter(
        field_name="subjects_text", lookup_expr="icontains", label="Subjects contain",
        widget=forms.TextInput(attrs={"placeholder": "text in their subjects"}))
    sync = filters.ChoiceFilter(
        method="filter_sync", label="Definition", empty_label="any",
        choices=[(MANAGED, "managed"), *StreamSync.choices])
    # Unticked (absent) hides them: the box is the only way to see system streams.
    system = filters.BooleanFilter(method="filter_system", label="show system streams",
                                   widget=forms.CheckboxInput)
    sort = StreamOrder(fields=[column for column, _label in STREAM_COLUMNS],
                       field_labels=dict(STREAM_COLUMNS), widget=InStreamFilters)

    class Meta:
        model = Stream
        fields: list[str] = []

    def filter_sync(self, streams: QuerySet[Stream], name: str, sync: str) -> QuerySet[Stream]:
        if sync == MANAGED:
            return streams.exclude(sync=StreamSync.UNMANAGED)
        return streams.filter(sync=sync)

    def filter_subject(self, streams: QuerySet[Stream], name: str, subject: str
                       ) -> QuerySet[Stream]:
        subject = subject.strip()
        matching = [row for row, subjects in streams.values_list("pk", "subjects")
                    if any(naming.subjects_overlap(subject, taken)
                           for taken in subjects or [])]
        return streams.filter(pk__in=matching)

    def filter_system(self, streams: QuerySet[Stream], name: str, shown: bool
                      ) -> QuerySet[Stream]:
        return streams if shown else streams.filter(system_kind="")

    @property
    def order(self) -> str:
        """The order the list is in: the one asked for when valid, else by name."""
        self.form.is_valid()  # cleaned_data then holds the valid values only
        return (self.form.cleaned_data.get("sort") or ["name"])[0]
