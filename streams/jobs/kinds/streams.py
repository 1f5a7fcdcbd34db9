"""Stream jobs: list, read (with its consumers), create, update, delete, purge, adopt."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from streams import audit, outside, stream_config
from streams.broker import streams as broker_streams
from streams.broker.connection import Connection
from streams.broker.errors import NotAsSeen
from streams.errors import OperationError
from streams.jobs.kinds.base import Kind, Result
from streams.models import (
    AuditEvent,
    Consumer,
    Job,
    JobKind,
    Profile,
    Stream,
    StreamDefinition,
    StreamStatus,
    StreamSync,
)


class ListStreams(Kind):
    kind = JobKind.STREAM_LIST
    done = "listed on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.list_streams(conn)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is None:
            return []
        now = timezone.now()
        unreadable: dict[str, tuple[str, str]] = dict.fromkeys(
            result["missing"], (StreamStatus.MISSING, "no replica of this stream answered"))
        unreadable.update((name, (StreamStatus.OFFLINE, reason))
                          for name, reason in result["offline"].items())
        defined = StreamDefinition.objects.configs(job.profile_id)
        previous = Stream.objects.sync_states(job.profile_id)
        stored = {}
        rows = Stream.objects.all()  # one queryset for thousands of rows, not one each
        for info in result["streams"]:
            name = info["config"]["name"]
            stored[name] = rows.row(job.profile_id, info, now,
                                    *unreadable.pop(name, (StreamStatus.OK, "")),
                                    definition=defined.get(name))
        for name, (status, reason) in unreadable.items():  # known by name only
            stored[name] = Stream.objects.unreadable_row(
                job.profile_id, name, status, reason, now,
                StreamSync.DRIFTED if name in defined else StreamSync.UNMANAGED)
        for name in defined.keys() - stored.keys():
            stored[name] = Stream.objects.missing_row(job.profile_id, name, now)
        Stream.objects.store(list(stored.values()))
        # Streams that were neither in this listing nor defined are gone, with their consumers.
        Stream.objects.filter(profile_id=job.profile_id, read_at__lt=now).delete()
        # Named here rather than "not among the thousands listed": a NOT IN of every stream
        # costs more than the listing's own rows.
        consumers = Consumer.objects.filter(profile_id=job.profile_id)
        gone = set(consumers.values_list("stream_name", flat=True).distinct()) - stored.keys()
        if gone:
            consumers.filter(stream_name__in=gone).delete()
        Profile.objects.note_version(job.profile, result.get("server_version"))
        return outside.noticed(job, previous, stored.values())

    def summary(self, result: Result) -> Result:
        return {key: value for key, value in result.items() if key != "streams"}


SUBJECTS_KEPT = 100  # per-subject counts kept for the detail page


class ReadStream(Kind):
    kind = JobKind.STREAM_INFO
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.stream_info(conn, job.target)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_gone(job, error)
        if result is None:
            return []
        previous = Stream.objects.sync_states(job.profile_id, [job.target])
        row = Stream.objects.store_one(job.profile_id, job.target, self.summary(result)["info"])
        Consumer.objects.store(job.profile_id, job.target, result["consumers"], result["missing"])
        Profile.objects.note_version(job.profile, result.get("server_version"))
        return outside.noticed(job, previous, [row])

    def summary(self, result: Result) -> Result:
        """Keep the largest per-subject counts only: a stream may have millions of subjects;
        its consumers are in their own rows."""
        result = {key: value for key, value in result.items()
                  if key not in {"consumers", "missing"}}
        info = result.get("info")
        subjects = ((info or {}).get("state") or {}).get("subjects")
        if not subjects or len(subjects) <= SUBJECTS_KEPT:
            return result
        largest = sorted(subjects.items(), key=lambda item: -item[1])[:SUBJECTS_KEPT]
        state = {**info["state"], "subjects": dict(largest), "subjects_truncated": True}
        return {**result, "info": {**info, "state": state}}


def stream_entry(
    job: Job, action: str, error: OperationError | None, *,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None, message: str = "",
) -> list[AuditEvent]:
    return [AuditEvent.objects.entry(
        action, audit.Context.of_job(job), target_type="stream", target_name=job.target,
        profile=job.profile, job=job, outcome="failed" if error else "succeeded",
        before=before, after=after, changes=changes,
        message=error.message if error else message,
    )]


class CreateStream(Kind):
    kind = JobKind.STREAM_CREATE
    done = "created on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.create_stream(conn, job.params["config"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        asked = job.params["config"]
        if result is not None:
            if result["created"]:
                StreamDefinition.objects.store(job, {job.target: result["info"]["config"]})
            Stream.objects.store_one(job.profile_id, job.target, result["info"])
            Profile.objects.note_version(job.profile, result.get("server_version"))
            if not result["created"]:
                return []  # nothing changed: the job's own entry says so
        return stream_entry(job, "stream.created", error,
                             after=result["info"]["config"] if result else asked,
                             message="created")

    def describe(self, job: Job, result: Result) -> str:
        if result.get("created", True):
            return job.get_kind_display()
        earlier = " (an earlier attempt of this job may have made it)" if job.attempts > 1 else ""
        return f"already existed with this configuration: nothing changed{earlier}"


class UpdateStream(Kind):
    kind = JobKind.STREAM_UPDATE
    done = "changed on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.update_stream(conn, job.target, job.params["changes"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        changes = job.params["changes"]
        if result is None:
            self.note_gone(job, error)
            return stream_entry(job, "stream.changed", error, changes=changes)
        before, after = result["before"], result["info"]["config"]
        StreamDefinition.objects.store(job, {job.target: after})
        Stream.objects.store_one(job.profile_id, job.target, result["info"])
        Profile.objects.note_version(job.profile, result.get("server_version"))
        return stream_entry(job, "stream.changed", error, before=before, after=after,
                             changes=stream_config.diff(before, after, list(changes)),
                             message="changed" if result["applied"] else "nothing to change")


class DeleteStream(Kind):
    kind = JobKind.STREAM_DELETE
    done = "deleted on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.delete_stream(conn, job.target, job.params.get("seen"))

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is None:
            _show_what_is_there(job, error)
            return stream_entry(job, "stream.deleted", error)
        Stream.objects.filter(profile_id=job.profile_id, name=job.target).delete()
        Consumer.objects.filter(profile_id=job.profile_id, stream_name=job.target).delete()
        Job.objects.forget_messages_of(job.profile_id, job.target)
        forgotten, _ = StreamDefinition.objects.forget(job.profile_id, job.target)
        if result["deleted"]:
            return stream_entry(job, "stream.deleted", error, before=result["before"],
                                 message="deleted")
        if forgotten:  # gone on the broker already, but the team's definition of it goes now
            return stream_entry(job, "stream.deleted", error,
                                 message="already gone on the broker; its definition was removed")
        return []

    def describe(self, job: Job, result: Result) -> str:
        return job.get_kind_display() if result["deleted"] else "already gone: nothing to delete"


def _show_what_is_there(job: Job, error: OperationError | None) -> None:
    """A step refused because the stream is not the one its page showed: the page shows the
    one there now, and confirming again acts on that one."""
    if isinstance(error, NotAsSeen):
        Stream.objects.store_one(job.profile_id, job.target, error.info)


class PurgeStream(Kind):
    kind = JobKind.STREAM_PURGE
    done = "purged on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        params = job.params
        return broker_streams.purge_stream(conn, job.target, subject=params.get("subject", ""),
                                           keep=params.get("keep", 0), seq=params.get("seq", 0),
                                           seen=params.get("seen"))

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        self.note_gone(job, error)
        _show_what_is_there(job, error)
        if result is not None:
            Stream.objects.store_one(job.profile_id, job.target, result["info"])
            # Its messages browsed or read for download before go too (a purge by subject or
            # keep leaves some: those are read again by the next browse).
            Job.objects.forget_messages_of(job.profile_id, job.target)
        return stream_entry(
            job, "stream.purged", error, before=(result or {}).get("state_before"),
            after=(result or {}).get("info", {}).get("state"), changes=job.public_params or None,
            message=f"purged {result['purged']} message(s)" if result else "",
        )


class AdoptStreams(Kind):
    """Streams made elsewhere become managed: each one's definition is its live config."""

    kind = JobKind.STREAM_ADOPT
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.stream_infos(conn, job.params["names"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is None:
            return []
        configs = {info["config"]["name"]: info["config"] for info in result["infos"]}
        StreamDefinition.objects.store(job, configs)
        now = timezone.now()
        Stream.objects.store([Stream.objects.row(job.profile_id, info, now,
                                                 definition=info["config"])
                              for info in result["infos"]])
        Profile.objects.note_version(job.profile, result.get("server_version"))
        context = audit.Context.of_job(job)
        return [AuditEvent.objects.entry("stream.adopted", context, target_type="stream",
                                         target_name=name, profile=job.profile, job=job,
                                         outcome="succeeded", after=config,
                                         message="adopted: its live configuration is now its "
                                                 "definition")
                for name, config in configs.items()]

    def summary(self, result: Result) -> Result:
        return {"adopted": len(result["infos"]), "gone": result["gone"],
                **{key: value for key, value in result.items() if key not in {"infos", "gone"}}}

    def describe(self, job: Job, result: Result) -> str:
        gone = f"; {len(result['gone'])} no longer on the server" if result["gone"] else ""
        return f"adopted {len(result['infos'])} stream(s){gone}"
