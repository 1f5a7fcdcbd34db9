"""Submitting a job (the web process): the Job row and its audit entry in one transaction,
handed to a worker only once both are committed."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from streams import audit
from streams.errors import OperationError
from streams.jobs import outcome
from streams.models import Job, JobKind, JobQuerySet, JobStatus, Profile

log = logging.getLogger(__name__)

RUN_JOB = "streams.run_job"  # the task, sent by name: this process never imports the worker's


def submit(
    kind: str, profile: Profile, context: audit.Context, *, target: str = "",
    params: dict[str, Any] | None = None, audited: dict[str, Any] | None = None,
) -> Job:
    """`audited`: what the audit entry records of the params when not their public part (which
    leaves a message's body and headers out of the log)."""
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            profile=profile,
            profile_name=profile.name,
            target=target or profile.name,
            params=params or {},
            actor=context.actor,
            actor_name=context.actor.get_username() if context.actor else "",
            ip=context.ip,
            user_agent=context.user_agent,
            request_id=context.request_id,
        )
        if not JobKind(kind).reads:  # a read is on the Job row alone
            audit.record(
                "job.requested", context, target_type=JobKind(kind).target_type,
                target_name=job.target, profile=profile, job=job, outcome="requested",
                after=(job.public_params if audited is None else audited) or None,
                message=job.get_kind_display(),
            )
        transaction.on_commit(partial(enqueue, job))
    return job


def enqueue(job: Job) -> None:
    """Hand the job to a worker; fail it (in place too) when the queue is unreachable."""
    try:
        current_app.send_task(RUN_JOB, args=[job.pk])
    except OperationalError as exc:
        log.warning("job %s not enqueued: %s", job.pk, exc)
        outcome.fail(job, OperationError("task queue unreachable: the job could not be handed "
                                         "to a worker (is Redis running?)"),
                     expected=JobStatus.QUEUED)


def _reads(kind: str, profile: Profile, target: str) -> JobQuerySet:
    reads = Job.objects.filter(profile=profile, kind=kind)
    return reads.filter(target=target) if target else reads


def read_due(kind: str, profile: Profile, target: str = "") -> bool:
    """Whether the rows a read of this kind stores (a profile's streams, one stream's) are
    older than READ_AGAIN_AFTER, or were never read, with no such read queued or running. A
    read that failed counts as one: its page shows the error rather than asking at once again."""
    recent = timezone.now() - timedelta(seconds=settings.READ_AGAIN_AFTER)
    return not _reads(kind, profile, target).filter(
        Q(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)) | Q(finished_at__gte=recent)
    ).exists()


def read_again(kind: str, profile: Profile, context: audit.Context, *,
               target: str = "") -> Job | None:
    """The read a page asks for as it opens: the one queued or running already, else a new one
    when the rows are due (read_due), else None (read meanwhile). Submitted under a lock on
    the profile's row on PostgreSQL (SQLite's IMMEDIATE transactions take turns), so pages
    opened together share one read."""
    with transaction.atomic():
        if connection.features.has_select_for_update:
            list(Profile.objects.select_for_update().filter(pk=profile.pk).only("pk"))
        ongoing = _reads(kind, profile, target).filter(
            status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).order_by("-pk").first()
        if ongoing is not None:
            return ongoing
        if not read_due(kind, profile, target):
            return None
        return submit(kind, profile, context, target=target)
