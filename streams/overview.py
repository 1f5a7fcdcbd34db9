"""The home page's answer to "is everything OK?": each connection a user sees, as its last
check (streams.checks) and the stored rows say, never asking the broker. A handful of
queries, whatever the number of connections and streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from streams import checks, health, policy
from streams.definitions import StreamSync
from streams.models import (
    AuditEvent,
    ConnectionHealth,
    Job,
    JobStatus,
    Profile,
    Stream,
    WorkerHeartbeat,
)

RECENT = timedelta(hours=24)  # failed jobs counted on a card


@dataclass
class Usage:
    """One JetStream resource of the account against its limit (None: no limit)."""

    label: str
    used: int
    limit: int | None
    size: bool  # bytes (shown as sizes) rather than a count

    @property
    def percent(self) -> int | None:
        return None if not self.limit else min(100, round(100 * self.used / self.limit))

    @property
    def shown(self) -> str:
        """The use as the card says it: "512.0 MB of 1.0 GB (50%)", "0 bytes"."""
        def amount(value: int) -> str:
            return filesizeformat(value) if self.size else str(value)

        if not self.limit:
            return amount(self.used)
        return f"{amount(self.used)} of {amount(self.limit)} ({self.percent}%)"


@dataclass
class Connection:
    profile: Profile
    health: ConnectionHealth | None
    streams: dict[str, int] = field(default_factory=dict)  # by StreamSync value
    running: int = 0
    failed: int = 0
    listener: str = ""  # for a profile that records outside changes: how the listener is

    @property
    def state(self) -> str:
        """"unchecked", "stale" (no check lately: no scheduler?), "down" or "ok"."""
        if self.health is None:
            return "unchecked"
        if self.health.stale:
            return "stale"
        return "ok" if self.health.ok else "down"

    @property
    def report(self) -> dict[str, Any]:
        return (self.health.report if self.health else None) or {}

    @cached_property
    def usage(self) -> list[Usage]:
        account = self.report.get("account")
        if not account:
            return []
        limits = account.get("limits") or {}

        def limit(key: str) -> int | None:
            value = limits.get(key)
            return value if isinstance(value, int) and value > 0 else None  # -1: none

        return [Usage("Storage", account.get("storage", 0), limit("max_storage"), True),
                Usage("Memory", account.get("memory", 0), limit("max_memory"), True),
                Usage("Streams", account.get("streams", 0), limit("max_streams"), False),
                Usage("Consumers", account.get("consumers", 0), limit("max_consumers"), False)]

    @property
    def limited(self) -> bool:
        """Whether the account has any JetStream limit to draw a bar against."""
        return any(usage.limit for usage in self.usage)

    @property
    def stream_states(self) -> list[tuple[str, str, int]]:
        """(filter value, label, count) for every definition state, in the list's order."""
        return [(value, label, self.streams.get(value, 0))
                for value, label in (*[(s.value, s.label) for s in (
                    StreamSync.IN_SYNC, StreamSync.DRIFTED, StreamSync.MISSING)],
                    (StreamSync.UNMANAGED.value, "unmanaged"))]


@dataclass
class Overview:
    connections: list[Connection]
    entries: list[AuditEvent]
    scheduler_seen: bool


def overview(user: Any) -> Overview:
    profiles: QuerySet[Profile] = policy.profiles(user).select_related(
        "team", "health", "following")
    connections = {profile.pk: Connection(profile, getattr(profile, "health", None))
                   for profile in profiles}
    ids = list(connections)
    counts = (Stream.objects.filter(profile__in=ids, system_kind="")
              .values_list("profile_id", "sync").annotate(n=Count("pk")).order_by())
    for profile_id, sync, count in counts:
        connections[profile_id].streams[sync] = count
    jobs = Job.objects.filter(profile__in=ids).asked()
    for profile_id, count in (
            jobs.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
            .values_list("profile_id").annotate(n=Count("pk")).order_by()):
        connections[profile_id].running = count
    for profile_id, count in (
            jobs.filter(status=JobStatus.FAILED, finished_at__gte=timezone.now() - RECENT)
            .values_list("profile_id").annotate(n=Count("pk")).order_by()):
        connections[profile_id].failed = count
    listening = not health.late(WorkerHeartbeat.LISTENER, settings.ADVISORY_REREAD_INTERVAL)
    for connection in connections.values():
        connection.listener = _listener(connection.profile, listening)
    entries = list(AuditEvent.objects.seen_by(user).order_by("-seq")
                   .only("seq", "at", "actor_name", "action", "target_name", "profile_name",
                         "outcome")[:8])
    return Overview(list(connections.values()), entries,
                    not health.late(WorkerHeartbeat.SCHEDULER, checks.TICK))


def _listener(profile: Profile, running: bool) -> str:
    if not profile.record_outside:
        return ""
    if not running:
        return "the advisory listener is not running: changes made outside go unrecorded"
    following = getattr(profile, "following", None)
    if following is None:
        return "the listener is not following it yet"
    return f"followed since {following.since:%Y-%m-%d %H:%M:%S} UTC"
