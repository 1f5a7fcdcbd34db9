from __future__ import annotations

import logging

from celery import Task, shared_task

from streams import operations
from streams.jetstream import BrokerError

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_job(self: Task, job_id: int) -> None:
    """Run one job. Takes only its id; a redelivered or duplicate task finds it claimed and
    does nothing."""
    try:
        job = operations.claim(job_id)
    except operations.ProfileBusy:  # its turn comes when the profile's running job ends
        raise self.retry(countdown=min(0.05 * 2 ** self.request.retries, 1.0)) from None
    if job is None:
        return
    try:
        result = operations.execute(job)
    except BrokerError as error:
        if operations.may_retry(job, error):
            if operations.requeue(job, error):
                raise self.retry(countdown=2 ** job.attempts) from None
            return
        operations.fail(job, error)
    except Exception as exc:
        log.exception("job %s (%s) crashed", job.pk, job.kind)
        operations.fail(job, BrokerError(f"internal error: {type(exc).__name__}"))
    else:
        operations.succeed(job, result)

