"""What the periodic connection check (streams.checks, run by the scheduler) found: each
connection's health, and its streams' and consumers' numbers over time for the charts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from streams.models.profiles import Profile
from streams.uint64 import UInt64Field


class ConnectionHealthQuerySet(models.QuerySet["ConnectionHealth"]):
    def note(self, profile_id: int, report: dict[str, Any] | None, error: str = "",
             *, sampled: bool = False) -> None:
        """A check's (or a connection test's) answer: the server's report, or why it failed.
        A failed check keeps the last report, so the page can say what the server was."""
        now = timezone.now()
        fields: dict[str, Any] = {"checked_at": now, "ok": report is not None, "error": error}
        if report is not None:
            if "leaders" not in report:  # counted from a listing: the last count stands
                report = {**report, "leaders": self.filter(pk=profile_id).values_list(
                    "report__leaders", flat=True).first()}
            fields.update(report=report, ok_at=now)
        if sampled:
            fields["sampled_at"] = now
        self.update_or_create(profile_id=profile_id, defaults=fields)


class ConnectionHealth(models.Model):
    """A connection's last check. A row of its own: the profile form saves every field of the
    Profile, and would write back an older check's outcome."""

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE, primary_key=True,
                                   related_name="health")
    checked_at = models.DateTimeField()
    ok = models.BooleanField()
    error = models.TextField(blank=True)
    ok_at = models.DateTimeField(null=True, blank=True)  # the last check that got an answer
    # streams.broker.server.check_connection's report: server, cluster, JetStream usage.
    report = models.JSONField(null=True, blank=True)
    sampled_at = models.DateTimeField(null=True, blank=True)  # streams and consumers too

    objects = ConnectionHealthQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.profile_id}: {'ok' if self.ok else 'down'} at {self.checked_at}"

    @property
    def stale(self) -> bool:
        """Older than the scheduler lets a check get: nobody is checking (no scheduler)."""
        return self.checked_at < timezone.now() - timedelta(
            seconds=3 * settings.CHECK_INTERVAL + settings.JOB_BROKER_TIMEOUT)


class SampleQuerySet(models.QuerySet[Any]):
    def prune(self) -> int:
        """Drop samples older than SAMPLES_KEPT_HOURS; returns how many."""
        kept = timezone.now() - timedelta(hours=settings.SAMPLES_KEPT_HOURS)
        return self.filter(at__lt=kept).delete()[0]


class StreamSample(models.Model):
    """A stream's messages and bytes when a check sampled it."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    stream = models.CharField(max_length=255)
    at = models.DateTimeField(db_index=True)
    messages = UInt64Field()
    bytes = UInt64Field()

    objects = SampleQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["profile", "stream", "at"])]


class ConsumerSample(models.Model):
    """A consumer's lag (messages not yet delivered) and unacknowledged count when sampled."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    stream = models.CharField(max_length=255)
    consumer = models.CharField(max_length=255)
    at = models.DateTimeField(db_index=True)
    pending = UInt64Field()
    ack_pending = UInt64Field()

    objects = SampleQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["profile", "stream", "at"])]


def stream_history(profile_id: int, stream: str) -> dict[str, Any]:
    """A stream's samples (messages, bytes) and its consumers' (lag), oldest first, for the
    charts on its page."""
    rows = StreamSample.objects.filter(profile_id=profile_id, stream=stream).order_by("at")
    samples = list(rows.values_list("at", "messages", "bytes"))
    lag: dict[str, list[tuple[Any, int]]] = {}
    for consumer, at, pending in (ConsumerSample.objects.filter(
            profile_id=profile_id, stream=stream).order_by("consumer", "at")
            .values_list("consumer", "at", "pending")):
        lag.setdefault(consumer, []).append((at, pending))
    return {"messages": [(at, messages) for at, messages, _ in samples],
            "bytes": [(at, size) for at, _, size in samples], "lag": lag}
