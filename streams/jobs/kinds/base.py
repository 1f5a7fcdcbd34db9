"""What every kind of job is: what it asks the broker (`call`, no database writes), what it
stores when the answer comes back (`record`, whatever the outcome, returning the audit entries
that describe it), what its Job row keeps, and whether it may retry."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils import timezone

from streams.broker.connection import Connection
from streams.broker.errors import CONSUMER_NOT_FOUND, NOT_FOUND
from streams.errors import OperationError
from streams.models import AuditEvent, Consumer, Job, JobKind, Stream

Result = dict[str, Any]


class Kind:
    kind: ClassVar[JobKind]
    done: ClassVar[str]  # what the broker did, for a job whose outcome could not be recorded
    retry: ClassVar[bool] = True  # retry retryable failures with backoff

    def call(self, job: Job, conn: Connection) -> Result:
        raise NotImplementedError

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        return []

    def summary(self, result: Result) -> Result:
        """What of the result the Job row keeps."""
        return result

    def describe(self, job: Job, result: Result) -> str:
        """What the job's closing audit entry says it did."""
        return job.get_kind_display()

    def note_gone(self, job: Job, error: OperationError | None) -> None:
        """The job found its stream deleted (outside the dashboard): its row says so."""
        if error is not None and error.err_code == NOT_FOUND:
            Stream.objects.mark_gone(job.profile_id, job.target, f"not on the server at "
                                     f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC: deleted outside "
                                     "the dashboard?")

    def note_consumer_gone(self, job: Job, error: OperationError | None) -> None:
        """A consumer job found its stream, or the consumer, deleted outside the dashboard."""
        self.note_gone(job, error)
        if error is not None and error.err_code == CONSUMER_NOT_FOUND:
            Consumer.objects.forget(job.profile_id, job.target, job.params["consumer"])
