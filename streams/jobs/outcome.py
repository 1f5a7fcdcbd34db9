"""How a job ends: its outcome on the row, what its kind records from the broker's answer, and
the audit entries, in one transaction. Without a kind (a job that never reached the broker: no
worker, Redis down) only the outcome and the job's closing entry are written."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from streams import audit
from streams.errors import OperationError
from streams.jobs import wakeup
from streams.models import Job, JobKind, JobStatus

if TYPE_CHECKING:  # kinds talk to the broker: the web process never imports them
    from streams.jobs.kinds import Kind

log = logging.getLogger(__name__)


def succeed(job: Job, kind: Kind, result: dict[str, Any]) -> None:
    try:
        end(job, JobStatus.SUCCEEDED, JobStatus.RUNNING, kind=kind, result=result)
    except Exception as exc:
        # The broker did its part: say so, rather than leave the job to look like a dead worker.
        log.exception("job %s (%s): recording the outcome failed", job.pk, job.kind)
        end(job, JobStatus.FAILED, JobStatus.RUNNING, error=OperationError(
            f"{kind.done}; recording the outcome failed: {type(exc).__name__}: "
            f"{str(exc)[:200]}"))


def fail(job: Job, error: OperationError, *, kind: Kind | None = None,
         expected: str = JobStatus.RUNNING) -> None:
    end(job, JobStatus.FAILED, expected, kind=kind, error=error)


def end(
    job: Job, status: str, expected: str, *, kind: Kind | None = None,
    result: dict[str, Any] | None = None, error: OperationError | None = None,
) -> None:
    """Nothing happens when the job is no longer `expected`: the reaper or a duplicate task
    ended it meanwhile."""
    with transaction.atomic():
        if not job.close(
            expected, status=status, finished_at=timezone.now(), params=job.public_params,
            result=kind.summary(result) if kind and result is not None else result,
            error=error.message if error else "",
            err_code=error.err_code if error else None,
            error_field=error.field if error else "",
        ):
            return
        transaction.on_commit(partial(wakeup.notify, job.pk))  # a request may be waiting
        recorded = kind is not None and job.profile is not None  # a deleted profile: nothing
        entries = kind.record(job, result, error) if recorded else []
        if JobKind(job.kind).reads:  # what it found may be a change (made outside): recorded
            audit.append(entries)
            return
        if error:
            message = error.message
        elif kind and result is not None:
            message = kind.describe(job, result)
        else:
            message = job.get_kind_display()
        audit.append([*entries, audit.entry(
            "job.finished", audit.Context.of_job(job), target_type=JobKind(job.kind).target_type,
            target_name=job.target, profile=job.profile, job=job, outcome=status,
            message=message,
        )])
