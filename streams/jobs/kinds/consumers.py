"""Consumer jobs: create, update, delete, pause, resume."""

from __future__ import annotations

from typing import Any

from streams import audit, consumer_config
from streams.broker import consumers as broker_consumers
from streams.broker.connection import Connection
from streams.broker.errors import NotAsSeen
from streams.errors import OperationError
from streams.jobs.kinds.base import Kind, Result
from streams.models import AuditEvent, Consumer, Job, JobKind, Profile


def _consumer_entry(
    job: Job, action: str, error: OperationError | None, message: str, *,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> list[AuditEvent]:
    """A consumer's entry names its stream as the target (consumer names are unique only
    within a stream) and the consumer in its message and configs."""
    name = job.params["consumer"]
    return [AuditEvent.objects.entry(
        action, audit.Context.of_job(job), target_type="stream", target_name=job.target,
        profile=job.profile, job=job, outcome="failed" if error else "succeeded",
        before=before, after=after, changes=changes,
        message=f"consumer {name}: {error.message if error else message}",
    )]


class CreateConsumer(Kind):
    kind = JobKind.CONSUMER_CREATE
    done = "created on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_consumers.create_consumer(conn, job.target, job.params["config"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_consumer_gone(job, error)
        if result is not None:
            Consumer.objects.store_one(job.profile_id, job.target, result["info"])
            Profile.objects.note_version(job.profile, result.get("server_version"))
            if not result["created"]:
                return []  # nothing changed: the job's own entry says so
        return _consumer_entry(job, "consumer.created", error, "created",
                               after=result["info"]["config"] if result else job.params["config"])

    def describe(self, job: Job, result: Result) -> str:
        if result["created"]:
            return job.get_kind_display()
        return "already existed with this configuration: nothing changed"


class UpdateConsumer(Kind):
    kind = JobKind.CONSUMER_UPDATE
    done = "changed on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_consumers.update_consumer(conn, job.target, job.params["consumer"],
                                                job.params["changes"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        changes = job.params["changes"]
        self.note_consumer_gone(job, error)
        if result is None:
            return _consumer_entry(job, "consumer.changed", error, "", changes=changes)
        before, after = result["before"], result["info"]["config"]
        Consumer.objects.store_one(job.profile_id, job.target, result["info"])
        Profile.objects.note_version(job.profile, result.get("server_version"))
        return _consumer_entry(job, "consumer.changed", error,
                               "changed" if result["applied"] else "nothing to change",
                               before=before, after=after,
                               changes=consumer_config.diff(before, after, list(changes)))


class DeleteConsumer(Kind):
    kind = JobKind.CONSUMER_DELETE
    done = "deleted on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_consumers.delete_consumer(conn, job.target, job.params["consumer"],
                                                job.params.get("seen"))

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_consumer_gone(job, error)
        if isinstance(error, NotAsSeen):  # the page shows the one there now
            Consumer.objects.store_one(job.profile_id, job.target, error.info)
        if result is None:
            return _consumer_entry(job, "consumer.deleted", error, "")
        Consumer.objects.forget(job.profile_id, job.target, job.params["consumer"])
        if not result["deleted"]:
            return []
        return _consumer_entry(job, "consumer.deleted", error, "deleted",
                               before=result["before"])

    def describe(self, job: Job, result: Result) -> str:
        return job.get_kind_display() if result["deleted"] else "already gone: nothing to delete"


class PauseConsumer(Kind):
    kind = JobKind.CONSUMER_PAUSE
    done = "paused on the broker"
    action = "consumer.paused"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_consumers.pause_consumer(conn, job.target, job.params["consumer"],
                                               job.params.get("pause_until"))

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_consumer_gone(job, error)
        if result is None:
            return _consumer_entry(job, self.action, error, "")
        Consumer.objects.store_one(job.profile_id, job.target, result["info"])
        Profile.objects.note_version(job.profile, result.get("server_version"))
        return _consumer_entry(job, self.action, error, self.describe(job, result),
                               before=_pause_state(result["before"]),
                               after=_pause_state(result["info"]))

    def describe(self, job: Job, result: Result) -> str:
        if result["paused"]:
            until = consumer_config.format_value("pause_until", result["pause_until"])
            return f"paused until {until}"
        return "resumed"


class ResumeConsumer(PauseConsumer):
    kind = JobKind.CONSUMER_RESUME
    done = "resumed on the broker"
    action = "consumer.resumed"


def _pause_state(info: dict[str, Any]) -> dict[str, Any]:
    return {"paused": bool(info.get("paused")),
            "pause_until": (info.get("config") or {}).get("pause_until")}
