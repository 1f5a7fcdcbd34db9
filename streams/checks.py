"""The scheduler's work (manage.py schedule, one per deployment: streams.singleton): a check
of each connection whose last one is older than CHECK_INTERVAL, so the home page is current
without anyone pressing a button and a broker that went down shows red within a minute;
every SAMPLE_INTERVAL the check samples streams and consumers for the charts. Old samples,
and check jobs past an hour, are dropped here too."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from streams import audit
from streams.models import (
    AuditEvent,
    ConsumerSample,
    Job,
    JobKind,
    JobStatus,
    Profile,
    StreamSample,
    WorkerHeartbeat,
)

TICK = 5.0  # seconds between the scheduler's rounds: a due check waits at most this long
CHECK_JOBS_KEPT = timedelta(hours=1)


def due() -> QuerySet[Profile]:
    """Connections whose last check is older than CHECK_INTERVAL (or never checked), with no
    check queued or running."""
    checking = Job.objects.filter(profile=OuterRef("pk"), kind=JobKind.CONNECTION_CHECK,
                                  status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
    recent = timezone.now() - timedelta(seconds=settings.CHECK_INTERVAL)
    return Profile.objects.exclude(health__checked_at__gte=recent).exclude(Exists(checking))


def submit_due() -> int:
    """One round of the scheduler; returns how many checks it submitted."""
    WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.SCHEDULER)
    unsampled = timezone.now() - timedelta(seconds=settings.SAMPLE_INTERVAL)
    submitted = 0
    for profile in due().select_related("health"):
        health = getattr(profile, "health", None)
        sample = health is None or health.sampled_at is None or health.sampled_at < unsampled
        Job.objects.submit(JobKind.CONNECTION_CHECK, profile, audit.Context(),
                           params={"sample": sample})
        submitted += 1
    return submitted


def tidy() -> int:
    """Drop samples past SAMPLES_KEPT_HOURS and ended checks past CHECK_JOBS_KEPT (but not one
    an audit entry names: a change made outside it noticed). Returns how many rows went."""
    old = Q(finished_at__lt=timezone.now() - CHECK_JOBS_KEPT)
    named = AuditEvent.objects.filter(job=OuterRef("pk"))
    checks = Job.objects.filter(old, kind=JobKind.CONNECTION_CHECK).exclude(Exists(named))
    return (StreamSample.objects.prune() + ConsumerSample.objects.prune()
            + checks.delete()[0])
