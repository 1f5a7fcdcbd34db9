"""Submitting a job (the web process): the Job row and its audit entry in one transaction,
handed to a worker only once both are committed."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError

from memphisadmin.celery import app
from streams import audit
from streams.errors import OperationError
from streams.jobs import outcome
from streams.models import Job, JobKind, JobStatus, Profile

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
        app.send_task(RUN_JOB, args=[job.pk])
    except OperationalError as exc:
        log.warning("job %s not enqueued: %s", job.pk, exc)
        outcome.fail(job, OperationError("task queue unreachable: the job could not be handed "
                                         "to a worker (is Redis running?)"),
                     expected=JobStatus.QUEUED)
