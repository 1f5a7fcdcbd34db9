"""Message jobs: browse (never through a consumer), read one for its page, download one, delete
one, publish one. The reads write no audit entry but, with settings.AUDIT_MESSAGE_READS,
`messages.read`: who read which sequences of which stream, never what they hold."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from django.conf import settings

from streams import audit
from streams.broker import messages as broker_messages
from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.jobs.kinds.base import Kind, Result
from streams.models import AuditEvent, Job, JobKind


class BrowseMessages(Kind):
    kind = JobKind.MESSAGE_LIST
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        params = job.params
        return broker_messages.browse(
            conn, job.target, start=params["start"], count=params["count"],
            subject=params.get("subject", ""),
            at=datetime.fromisoformat(params["at"]) if params.get("at") else None)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_gone(job, error)
        return _read_entry(job, [message["seq"] for message in result["messages"]]
                           if result else [])

    def describe(self, job: Job, result: Result) -> str:
        return f"read {len(result['messages'])} message(s)"


class DownloadMessage(Kind):
    """One whole message for its download: the view takes it from the job's row and then
    removes it there (streams.views.messages.message_download)."""

    kind = JobKind.MESSAGE_GET
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_messages.get_message(conn, job.target, job.params["seq"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_gone(job, error)
        return _read_entry(job, [result["seq"]] if result else [])

    def summary(self, result: Result) -> Result:
        # The body alone is taken by the download; its headers are as private and not needed.
        return {key: result[key] for key in ("seq", "size", "data")}

    def describe(self, job: Job, result: Result) -> str:
        return f"read message {result['seq']} ({result['size']} bytes)"


class ReadMessage(Kind):
    """One message for its own page: its headers and the first VIEW_BYTES of its payload, kept
    under "message" for its reader until forgotten (Job.MESSAGE_RESULTS)."""

    kind = JobKind.MESSAGE_READ
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_messages.get_message(conn, job.target, job.params["seq"],
                                           keep=broker_messages.VIEW_BYTES)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_gone(job, error)
        return _read_entry(job, [result["seq"]] if result else [])

    def summary(self, result: Result) -> Result:
        return {"seq": result["seq"], "size": result["size"], "message": result}

    def describe(self, job: Job, result: Result) -> str:
        return f"read message {result['seq']} ({result['size']} bytes)"


def _read_entry(job: Job, seqs: list[int]) -> list[AuditEvent]:
    """Data access, when the deployment records it: the sequences, never a payload."""
    if not settings.AUDIT_MESSAGE_READS or not seqs:
        return []
    return [AuditEvent.objects.entry(
        "messages.read", audit.Context.of_job(job), target_type="stream",
        target_name=job.target, profile=job.profile, job=job, outcome="succeeded",
        after={"seqs": seqs}, message=f"{job.get_kind_display()}: {len(seqs)} message(s)")]


def _message_entry(job: Job, action: str, error: OperationError | None,
                   facts: dict[str, Any] | None, message: str) -> list[AuditEvent]:
    """Subject, sequence and size only: a message's body and headers stay out of the log."""
    return [AuditEvent.objects.entry(
        action, audit.Context.of_job(job), target_type="stream", target_name=job.target,
        profile=job.profile, job=job, outcome="failed" if error else "succeeded",
        after=facts, message=error.message if error else message)]


class DeleteMessage(Kind):
    kind = JobKind.MESSAGE_DELETE
    done = "deleted on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_messages.delete_message(conn, job.target, job.params["seq"],
                                              job.params.get("seen"))

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_gone(job, error)
        if result is not None:  # not in the stream now: pages and downloads holding it drop it
            Job.objects.forget_messages_of(job.profile_id, job.target, result["seq"])
        if result is not None and not result["deleted"]:
            return []  # nothing changed: the job's own entry says so
        facts = ({key: result[key] for key in ("seq", "subject", "size")} if result
                 else {"seq": job.params["seq"]})
        return _message_entry(job, "message.deleted", error, facts,
                              f"deleted message {job.params['seq']}")

    def describe(self, job: Job, result: Result) -> str:
        if result["deleted"]:
            return f"deleted message {result['seq']}"
        return f"no message {result['seq']}: nothing to delete"


class PublishMessage(Kind):
    kind = JobKind.MESSAGE_PUBLISH
    done = "published on the broker"
    retry = False  # a retry could store the message twice

    def call(self, job: Job, conn: Connection) -> Result:
        params = job.params
        return broker_messages.publish(conn, job.target, params["subject"],
                                       base64.b64decode(params["data"]), params["headers"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        facts = {"subject": job.params["subject"], "size": job.params["size"],
                 **({"seq": result["seq"]} if result else {})}
        return _message_entry(job, "message.published", error, facts,
                              f"published message {result['seq']}" if result else "")

    def describe(self, job: Job, result: Result) -> str:
        return f"published as message {result['seq']}"
