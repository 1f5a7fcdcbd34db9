"""Test connection: who the server is and what JetStream offers the account."""

from __future__ import annotations

from django.utils import timezone

from streams.broker import server
from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.jobs.kinds.base import Kind, Result
from streams.models import AuditEvent, Job, JobKind, Profile


class TestConnection(Kind):
    kind = JobKind.TEST_CONNECTION
    done = "the server answered"
    retry = False  # the answer is the point of a test: report the first failure

    def call(self, job: Job, conn: Connection) -> Result:
        # nats-py tries each server twice within the connect timeout; then the account request.
        return server.check_connection(
            conn, timeout=2 * conn.connect_timeout * max(len(conn.servers), 1) + 5)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        Profile.objects.filter(pk=job.profile_id).update(
            last_check_at=timezone.now(),
            last_check_ok=error is None,
            last_server_version=(result or {}).get("version", ""),
            last_check_error=error.message if error else "",
        )
        return []
