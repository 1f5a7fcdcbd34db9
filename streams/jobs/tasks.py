"""The worker's tasks: run a job, given only its id, and deliver a team's webhook event
(streams.webhooks). Thin: the job claims, finishes and fails itself (streams.models.Job), its
kind says what it asks and records; the retry policy is here."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings

from streams import policy, webhooks
from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.jobs.kinds import KINDS
from streams.models import Job, ProfileBusy

log = logging.getLogger(__name__)


@shared_task(name=Job.TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
def run_job(self: Task, job_id: int) -> None:
    """A redelivered or duplicate task finds the job claimed or ended and does nothing."""
    try:
        job = Job.objects.claim(job_id)
    except ProfileBusy:
        # It waits in the database, not here: a worker that died would take it along. The
        # profile's running job hands it on when it stops (Job.objects.hand_on).
        return
    if job is None:
        return
    if reason := policy.job_refusal(job):  # a role removed, or the profile made read-only
        job.fail(OperationError(f"permission revoked: {reason}"))
        return
    kind = KINDS[job.kind]
    try:
        if job.profile is None:
            raise OperationError("the connection profile was deleted")
        result = kind.call(job, Connection.from_profile(job.profile))
    except OperationError as error:
        if error.retryable and kind.retry and job.attempts < settings.JOB_MAX_ATTEMPTS:
            if job.requeue(error.message):
                raise self.retry(countdown=2 ** job.attempts) from None
            return
        job.fail(error, kind=kind)
    except Exception as exc:
        log.exception("job %s (%s) crashed", job.pk, job.kind)
        job.fail(OperationError(f"internal error: {type(exc).__name__}"), kind=kind)
    else:
        job.finish(result, kind)


@shared_task(name=webhooks.TASK, bind=True, acks_late=True, max_retries=webhooks.ATTEMPTS - 1)
def deliver_webhook(self: Task, delivery_id: int) -> None:
    """A team's webhook event; a receiver that fails is tried again, 1, 2, 4… s later."""
    if webhooks.deliver(delivery_id) is False and self.request.retries < self.max_retries:
        raise self.retry(countdown=2 ** self.request.retries)
