"""The profile's advisory capture stream, kept while changes made outside are recorded."""

from __future__ import annotations

from django.utils import timezone

from streams import system_streams
from streams.broker import streams as broker_streams
from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.jobs.kinds.base import Kind, Result
from streams.jobs.kinds.streams import stream_entry
from streams.models import AuditEvent, Job, JobKind, Profile, Stream


class KeepAdvisories(Kind):
    """The profile's advisory capture stream, made or removed as its settings now say (they
    may have changed since the job was submitted: the last job converges)."""

    kind = JobKind.ADVISORY_CAPTURE
    done = "the capture stream was set up on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        if job.profile.keeps_advisories:
            return broker_streams.create_stream(conn, system_streams.CAPTURE_CONFIG)
        return broker_streams.delete_stream(conn, system_streams.CAPTURE_STREAM)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        kept = (result or {}).get("info")
        Profile.objects.filter(pk=job.profile_id).update(
            last_capture_at=timezone.now(),
            last_capture_bytes=kept["state"]["bytes"] if kept else None,
            last_capture_error=error.message if error else "",
        )
        if kept:
            Stream.objects.store_one(job.profile_id, job.target, kept)
            return stream_entry(job, "stream.created", error, after=kept["config"],
                                 message="created to keep advisories while the listener is "
                                         "down") if result["created"] else []
        if result and result["deleted"]:
            Stream.objects.filter(profile_id=job.profile_id, name=job.target).delete()
            return stream_entry(job, "stream.deleted", error, before=result["before"],
                                 message="deleted: advisories are no longer kept")
        return []

    def describe(self, job: Job, result: Result) -> str:
        if "info" in result:
            return "created" if result["created"] else "in place"
        return "removed" if result["deleted"] else "not on the broker: nothing to remove"
