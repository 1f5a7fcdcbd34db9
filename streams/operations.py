"""Broker operations as jobs: the write path views use (Job + audit entry in one transaction,
enqueued on commit) and the steps the worker takes (claim, run, record the outcome)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from streams import audit, jetstream
from streams.jetstream import BrokerError
from streams.models import Job, JobKind, JobStatus, Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operation:
    """How the worker runs one kind of job: `call` talks to the broker (no database writes),
    `record` stores what came back in our own rows, whatever the outcome."""

    call: Callable[[Job, jetstream.Connection], dict[str, Any]]
    record: Callable[[Job, dict[str, Any] | None, BrokerError | None], None]
    target_type: str
    retry: bool = True  # retry retryable failures with backoff


def _check_connection(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    # nats-py tries each server twice within the connect timeout; the rest is the account request.
    timeout = 2 * conn.connect_timeout * max(len(conn.servers), 1) + 5
    return jetstream.check_connection(conn, timeout=timeout)


def _record_check(job: Job, result: dict[str, Any] | None, error: BrokerError | None) -> None:
    Profile.objects.filter(pk=job.profile_id).update(
        last_check_at=timezone.now(),
        last_check_ok=error is None,
        last_server_version=(result or {}).get("version", ""),
        last_check_error=error.message if error else "",
    )


OPERATIONS: dict[str, Operation] = {
    # The answer is the point of a test: report the first failure instead of retrying.
    JobKind.TEST_CONNECTION: Operation(_check_connection, _record_check, "profile", retry=False),
}


# Submitting (web process) ----------------------------------------------------------------------


def submit(
    kind: str, profile: Profile, context: audit.Context, *, target: str = "",
    params: dict[str, Any] | None = None,
) -> Job:
    """Create the job and its audit entry atomically; enqueue only once both are committed."""
    operation = OPERATIONS[kind]
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            profile=profile,
            profile_name=profile.name,
            target=target or profile.name,
            params=params or {},
            actor=context.actor,
            actor_name=context.actor.get_username() if context.actor else "",
        )
        audit.record(
            "job.requested", context, target_type=operation.target_type,
            target_name=job.target, profile=profile, job=job, outcome="requested",
            after=job.params or None, message=job.get_kind_display(),
        )
        transaction.on_commit(partial(enqueue, job.pk))
    job.refresh_from_db()  # enqueue may already have failed it
    return job


def enqueue(job_id: int) -> None:
    from streams.tasks import run_job

    try:
        run_job.apply_async(args=[job_id])
    except OperationalError as exc:
        log.warning("job %s not enqueued: %s", job_id, exc)
        fail(job_id, BrokerError("task queue unreachable: the job could not be handed to a "
                                 "worker (is Redis running?)"), expected=JobStatus.QUEUED)


# Running (worker process) ----------------------------------------------------------------------


def claim(job_id: int) -> Job | None:
    """Mark a queued job running. None when someone else has it or it has already ended, which
    makes a redelivered or duplicated task a no-op."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        started_at=now,
        deadline=now + timedelta(seconds=settings.JOB_RUN_TIMEOUT),
        attempts=F("attempts") + 1,
    )
    return Job.objects.select_related("profile").get(pk=job_id) if claimed else None


def may_retry(job: Job, error: BrokerError) -> bool:
    return (error.retryable and OPERATIONS[job.kind].retry
            and job.attempts < settings.JOB_MAX_ATTEMPTS)


def execute(job: Job) -> dict[str, Any]:
    """Run the job's broker call. Raises BrokerError."""
    if job.profile is None:
        raise BrokerError("the connection profile was deleted")
    return OPERATIONS[job.kind].call(job, jetstream.Connection.from_profile(job.profile))


def requeue(job: Job, error: BrokerError) -> bool:
    """Put a job back in the queue for another attempt after a retryable failure."""
    return bool(Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, error=f"attempt {job.attempts} failed: {error.message}",
        deadline=None,
    ))


def succeed(job: Job, result: dict[str, Any]) -> None:
    _finish(job.pk, JobStatus.SUCCEEDED, JobStatus.RUNNING, result=result)


def fail(job_id: int, error: BrokerError, expected: str = JobStatus.RUNNING) -> None:
    _finish(job_id, JobStatus.FAILED, expected, error=error)


def _finish(
    job_id: int, status: str, expected: str, *, result: dict[str, Any] | None = None,
    error: BrokerError | None = None,
) -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, status=expected).update(
            status=status,
            finished_at=now,
            result=result,
            error=error.message if error else "",
            err_code=error.err_code if error else None,
            error_field=error.field if error else "",
        )
        if not updated:  # finished meanwhile (by the reaper, or a duplicate task)
            return
        job = Job.objects.select_related("profile", "actor").get(pk=job_id)
        operation = OPERATIONS[job.kind]
        if job.profile is not None:
            operation.record(job, result, error)
        audit.record(
            "job.finished", audit.Context.of_job(job), target_type=operation.target_type,
            target_name=job.target, profile=job.profile, job=job, outcome=status,
            message=error.message if error else job.get_kind_display(),
        )


def reap_overdue(job_id: int | None = None) -> int:
    """Fail jobs nobody will finish: running past their deadline (the worker died) or queued
    longer than JOB_QUEUE_TIMEOUT (no worker is consuming). Returns how many were failed."""
    now = timezone.now()
    jobs = Job.objects.filter(pk=job_id) if job_id is not None else Job.objects.all()
    running = jobs.filter(status=JobStatus.RUNNING, deadline__lt=now)
    queued = jobs.filter(
        status=JobStatus.QUEUED,
        created_at__lt=now - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT),
    )
    reaped = 0
    for job_id in running.values_list("pk", flat=True):
        fail(job_id, BrokerError("the worker stopped before finishing the job (still running "
                                 "past its deadline)"))
        reaped += 1
    for job_id in queued.values_list("pk", flat=True):
        fail(job_id, BrokerError(f"no worker picked the job up within "
                                 f"{settings.JOB_QUEUE_TIMEOUT:g} s (is the worker running?)"),
             expected=JobStatus.QUEUED)
        reaped += 1
    return reaped
