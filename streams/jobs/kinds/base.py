"""What every kind of job is: what it asks the broker (`call`, no database writes), what it
stores when the answer comes back (`record`, whatever the outcome, returning the audit entries
that describe it), what its Job row keeps, and whether it may retry."""

from __future__ import annotations

from typing import Any, ClassVar

from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.models import AuditEvent, Job, JobKind

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
