"""The team audit log: the filtered list (also as per-profile and per-stream tabs), one entry's
detail with its change rendered field by field, and streamed CSV / JSON-lines exports."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.views.decorators.http import require_POST

from streams import audit, consumer_config, policy, stream_config
from streams.audit.chain import SECRET_CHANGED
from streams.audit.filters import ACTIONS, LIFECYCLE, AuditFilter
from streams.forms import transfer
from streams.models import AuditEvent, Job, Plan, Profile
from streams.views.http import (
    HtmxHttpRequest,
    check,
    follow_address,
    may,
    missing,
    page_or_partial,
)

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
TARGET_TYPES = ("profile", "stream", "team", "user", "view", "audit")
# The screen's columns, in order; the exports carry exactly these.
COLUMNS = (
    ("seq", "#"), ("at", "When"), ("actor", "Actor"), ("ip", "IP"), ("action", "Action"),
    ("target_type", "Target type"), ("target", "Target"), ("profile", "Profile"),
    ("outcome", "Outcome"), ("message", "Message"),
)
ROW_FIELDS = ("seq", "at", "actor_name", "ip", "action", "target_type", "target_name",
              "profile_name", "outcome", "message", "job_id", "changes")
# What the exports carry beside the columns: the whole change.
EXPORT_FIELDS = ("changes", "before", "after")


@dataclass(frozen=True)
class Page:
    """One keyset page, newest first: no OFFSET and no COUNT(*), so every page costs the same."""

    rows: list[dict[str, Any]]
    newer: int | None  # ?after= for the page before this one
    older: int | None  # ?before= for the page after this one

    @property
    def has_other_pages(self) -> bool:
        return self.newer is not None or self.older is not None


def _int(value: str | None) -> int | None:
    """A page cursor (an entry's seq); anything else is no cursor. ASCII digits only: isdigit()
    takes ² and ①, which int() refuses."""
    return int(value) if value and re.fullmatch(r"[0-9]{1,19}", value) else None


def keyset_page(events: QuerySet[AuditEvent], before: int | None, after: int | None) -> Page:
    events = events.order_by()
    if after is not None:
        rows = list(events.filter(seq__gt=after).order_by("seq").values(*ROW_FIELDS)
                    [:PAGE_SIZE + 1])
        has_newer = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        has_older = events.filter(seq__lte=after).exists()
    else:
        newest_first = events.filter(seq__lt=before) if before is not None else events
        rows = list(newest_first.order_by("-seq").values(*ROW_FIELDS)[:PAGE_SIZE + 1])
        has_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        has_newer = before is not None and events.filter(seq__gte=before).exists()
    return Page(
        rows=[_cells(row) for row in rows],
        newer=rows[0]["seq"] if has_newer and rows else None,
        older=rows[-1]["seq"] if has_older and rows else None,
    )


def _cells(row: dict[str, Any]) -> dict[str, Any]:
    """One entry as the screen and the exports show it, keyed like COLUMNS, with its job and
    what it changed in one line."""
    return {
        "seq": row["seq"],
        "at": row["at"].astimezone(UTC).isoformat(timespec="seconds"),
        "actor": row["actor_name"],
        "ip": row["ip"] or "",
        "action": row["action"],
        "target_type": row["target_type"],
        "target": row["target_name"],
        "profile": row["profile_name"],
        "outcome": row["outcome"],
        "message": row["message"],
        "job": row["job_id"],
        "changed": change_summary(row["action"], row["target_type"], row["changes"]),
    }


def _list(
    request: HtmxHttpRequest, events: QuerySet[AuditEvent], scope: dict[str, Any],
    fixed: tuple[str, ...] = (),
) -> HttpResponse:
    filters = AuditFilter(request.GET, queryset=events, fixed=fixed)
    before, after = _int(request.GET.get("before")), _int(request.GET.get("after"))
    page = keyset_page(filters.qs, before, after)
    query = filters.in_use
    table = {
        "page": page,
        "columns": COLUMNS,
        # An entry's address is this plus its seq: one reverse() per page, not one per row.
        "detail_url": reverse("audit_detail", args=[0]).removesuffix("0/"),
        # A change's job entries, folded under it, are a link away.
        "job_url": f"{request.path}?job=" if filters.fold else "",
        "lifecycle": LIFECYCLE,
    }
    context = {
        "page": page,
        # The log's hot path: Jinja2 draws the 50 rows in a fifth of the time the Django
        # engine takes (bench/bench_audit.py), escaping every value as the page would.
        "rows": mark_safe(render_to_string("streams/audit_rows.html", table, using="jinja2")),
        "filters": filters,
        "scope": scope,
        "query": query,
        "actions": ACTIONS,
        "target_types": TARGET_TYPES,
        # Suggestions name only what the user may see: their teams' people and connections.
        "actors": policy.colleagues(request.user).values_list("username", flat=True),
        "profile_names": policy.profiles(request.user).values_list("name", flat=True),
    }
    response = render(request, page_or_partial(request, "streams/audit_list.html", "audit_table"),
                      context)
    if request.htmx:  # the address bar gets the filters in use, not every empty form field
        shown = query.copy()
        if after is not None:
            shown["after"] = str(after)
        elif before is not None:
            shown["before"] = str(before)
        response = follow_address(request, response, request.path, shown.urlencode())
    return response


def audit_list(request: HtmxHttpRequest) -> HttpResponse:
    return _list(request, AuditEvent.objects.seen_by(request.user), {"url": request.path})


@may("view")
def profile_audit(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    return _list(request, AuditEvent.objects.filter(profile_id=profile.pk),
                 {"url": request.path, "profile": profile}, fixed=("profile",))


@may("view")
def stream_audit(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    events = AuditEvent.objects.filter(profile_id=profile.pk, target_type="stream",
                                       target_name=name)
    return _list(request, events, {"url": request.path, "profile": profile, "stream": name},
                 fixed=("profile", "target_type", "target"))


# Detail ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRow:
    label: str
    kind: str  # added / removed / changed
    old: str = ""
    new: str = ""
    secret: bool = False


def field_label(action: str, target_type: str, key: str) -> str:
    """A changed key as the form that changes it labels it: the profile form's, the consumer
    form's (consumer entries name their stream as target) or the stream form's."""
    if target_type == "profile":
        try:
            return capfirst(Profile._meta.get_field(key).verbose_name)
        except FieldDoesNotExist:
            return key
    if action.startswith("consumer."):
        return consumer_config.label_of_key(key)
    return stream_config.label_of_key(key)


def change_summary(action: str, target_type: str, changes: Any) -> str:
    """What an entry changed, in one line of form labels: `Stream Messages Limit -1 → 5000`
    (a secret only that it changed)."""
    if not isinstance(changes, dict):
        return ""
    parts = []
    for key, value in changes.items():
        label = field_label(action, target_type, key)
        if key in Profile.SECRET_FIELDS or value == SECRET_CHANGED:
            parts.append(f"{label} changed")
        elif isinstance(value, list) and len(value) == 2:
            parts.append(f"{label} {_show(value[0]) or '—'} → {_show(value[1]) or '—'}")
        else:
            parts.append(f"{label} {_show(value)}")
    return "; ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def change_rows(event: AuditEvent) -> list[ChangeRow]:
    """The entry's before / after, field by field. A secret shows only that it changed."""
    before, after, changes = event.before or {}, event.after or {}, event.changes or {}
    rows = []
    for key in sorted(before.keys() | after.keys() | changes.keys()):
        label = field_label(event.action, event.target_type, key)
        if key in Profile.SECRET_FIELDS or changes.get(key) == SECRET_CHANGED:
            if key in changes or bool(before.get(key)) != bool(after.get(key)):
                rows.append(ChangeRow(label, "changed", secret=True))
        elif key in before and key in after:
            if before[key] != after[key]:
                rows.append(ChangeRow(label, "changed", _show(before[key]), _show(after[key])))
        elif key in after:
            if after[key] not in (None, ""):
                rows.append(ChangeRow(label, "added", new=_show(after[key])))
        elif key in before:
            if before[key] not in (None, ""):
                rows.append(ChangeRow(label, "removed", old=_show(before[key])))
        elif isinstance(changes[key], list) and len(changes[key]) == 2:
            old, new = changes[key]
            rows.append(ChangeRow(label, "changed", _show(old), _show(new)))
    return rows


def audit_detail(request: HttpRequest, seq: int) -> HttpResponse:
    event = get_object_or_404(AuditEvent.objects.seen_by(request.user), seq=seq)
    return render(request, "streams/audit_detail.html", _detail(event))


def _detail(event: AuditEvent) -> dict[str, Any]:
    profile = Profile.objects.filter(pk=event.profile_id).first() if event.profile_id else None
    return {
        "event": event,
        "job": Job.objects.filter(pk=event.job_id).first() if event.job_id else None,
        "profile": profile,
        "changes": change_rows(event),
        "restorable": profile is not None and _earlier_config(event) is not None,
    }


# A stream's change whose entry holds the config before it: that version can be restored.
RESTORABLE = ("stream.changed", "stream.changed_outside", "stream.deleted")


def _earlier_config(event: AuditEvent) -> dict[str, Any] | None:
    before = event.before
    if event.action not in RESTORABLE or not isinstance(before, dict):
        return None
    # The listener wrote its first entries with the config under "config"; the chain keeps
    # them as they were written.
    if event.action == "stream.changed_outside" and isinstance(before.get("config"), dict):
        before = before["config"]
    return before if before.get("name") else None


@require_POST
def audit_restore(request: HttpRequest, seq: int) -> HttpResponse:
    """A plan back to the stream's config before this entry's change, on its profile."""
    event = AuditEvent.objects.seen_by(request.user).filter(seq=seq).first()
    if event is None:
        missing(request, "audit entry")
    context = _detail(event)
    if not context["restorable"]:
        raise Http404("this entry holds no earlier version of a stream on a profile")
    profile = context["profile"]
    check(request, "plan", profile)
    config, errors = transfer.check(_earlier_config(event), profile)
    if errors:  # e.g. the profile's server is now older than the options it had
        context["restore_problems"] = [transfer.Problem(f"entry #{seq}", config.get(
            "name", event.target_name), errors)]
        return render(request, "streams/audit_detail.html", context)
    plan = Plan.objects.propose(profile, {config["name"]: config},
                                origin=f"restore of audit #{seq}",
                                context=audit.Context.from_request(request))
    return redirect("plan_detail", plan.pk)


# Export ----------------------------------------------------------------------------------------


class _Echo:
    """csv.writer wants a file; this one hands each line back instead of keeping it."""

    def write(self, value: str) -> str:
        return value


def _export_rows(events: QuerySet[AuditEvent], up_to: int) -> Iterator[dict[str, Any]]:
    """Newest first, in keyset chunks: memory stays flat and no cursor is held open between
    chunks (a long export does not pin a database snapshot)."""
    while True:
        chunk = list(events.filter(seq__lte=up_to).order_by("-seq")
                     .values(*ROW_FIELDS, *EXPORT_FIELDS)[:EXPORT_CHUNK])
        yield from ({**_cells(row), **{key: row[key] for key in EXPORT_FIELDS}}
                    for row in chunk)
        if len(chunk) < EXPORT_CHUNK:
            return
        up_to = chunk[-1]["seq"] - 1


def _csv_safe(value: Any) -> Any:
    # A leading = + - @ makes spreadsheets evaluate the cell: entries hold user-typed names.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The screen's columns, then the change: its summary and before / after as JSON."""
    writer = csv.writer(_Echo())
    yield writer.writerow([header for _, header in COLUMNS] + ["Job", "Changed", "Before",
                                                               "After"])
    for row in rows:
        change = [row["job"] or "", row["changed"]] + [
            "" if row[key] is None else json.dumps(row[key], ensure_ascii=False)
            for key in ("before", "after")]
        yield writer.writerow([_csv_safe(value) for value in
                               [row[key] for key, _ in COLUMNS] + change])


def _json_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv", _csv_lines),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl", _json_lines),
}


def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    content_type, extension, lines = EXPORT_FORMATS[fmt]
    filters = AuditFilter(request.GET, queryset=AuditEvent.objects.seen_by(request.user),
                          fold=False)
    events = filters.qs
    # The export shows the log as it was when asked for, without its own entry.
    up_to = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    AuditEvent.objects.record("audit.exported", audit.Context.from_request(request),
                              target_type="audit", target_name=extension, outcome="succeeded",
                              after={"format": extension, "filters": filters.in_use.dict(),
                                     "up_to_seq": up_to},
                              message=f"exported the audit log as {extension}")
    response = StreamingHttpResponse(lines(_export_rows(events, up_to)),
                                     content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{extension}"'
    return response
