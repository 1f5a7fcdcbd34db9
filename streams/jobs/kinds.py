"""The kinds of job, one class each: what it asks the broker (`call`, no database writes), what
it stores when the answer comes back (`record`, whatever the outcome, returning the audit
entries that describe it), what its Job row keeps, and whether it may retry. ApplyPlan, which
may run for thousands of streams, records as it goes instead (see there). Adding an operation
is adding a class here (and its form and view)."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import datetime
from typing import Any, ClassVar

from django.db import transaction
from django.utils import timezone

from streams import audit, consumer_config, definitions, outside, stream_config
from streams.broker import consumers as broker_consumers
from streams.broker import messages as broker_messages
from streams.broker import server
from streams.broker import streams as broker_streams
from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.jobs import rows
from streams.models import (
    AuditEvent,
    BrokerKind,
    Consumer,
    Job,
    JobKind,
    Plan,
    Profile,
    Stream,
    StreamDefinition,
    StreamStatus,
    StreamSync,
)
from streams.plans import steps as planning

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
        defined = rows.defined(job.profile_id)
        previous = rows.sync_states(job.profile_id)
        stored = {}
        for info in result["streams"]:
            name = info["config"]["name"]
            stored[name] = rows.stream_row(job.profile_id, info, now,
                                           *unreadable.pop(name, (StreamStatus.OK, "")),
                                           definition=defined.get(name))
        for name, (status, reason) in unreadable.items():  # known by name only
            stored[name] = rows.unreadable_row(
                job.profile_id, name, status, reason, now,
                StreamSync.DRIFTED if name in defined else StreamSync.UNMANAGED)
        for name in defined.keys() - stored.keys():
            stored[name] = rows.missing_row(job.profile_id, name, now)
        rows.store_streams(list(stored.values()))
        # Streams that were neither in this listing nor defined are gone, with their consumers.
        Stream.objects.filter(profile_id=job.profile_id, read_at__lt=now).delete()
        Consumer.objects.filter(profile_id=job.profile_id).exclude(
            stream_name__in=list(stored)).delete()
        rows.note_server(job, result)
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
        rows.mark_gone(job, error)
        if result is None:
            return []
        previous = rows.sync_states(job.profile_id, [job.target])
        row = rows.store_stream(job, self.summary(result)["info"])
        rows.store_consumers(job.profile_id, job.target, result["consumers"], result["missing"])
        rows.note_server(job, result)
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


def _stream_entry(
    job: Job, action: str, error: OperationError | None, *,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None, message: str = "",
) -> list[AuditEvent]:
    return [audit.entry(
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
                rows.store_definition(job, result["info"]["config"])
            rows.store_stream(job, result["info"])
            rows.note_server(job, result)
            if not result["created"]:
                return []  # nothing changed: the job's own entry says so
        return _stream_entry(job, "stream.created", error,
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
            rows.mark_gone(job, error)
            return _stream_entry(job, "stream.changed", error, changes=changes)
        before, after = result["before"], result["info"]["config"]
        rows.store_definition(job, after)
        rows.store_stream(job, result["info"])
        rows.note_server(job, result)
        return _stream_entry(job, "stream.changed", error, before=before, after=after,
                             changes=stream_config.diff(before, after, list(changes)),
                             message="changed" if result["applied"] else "nothing to change")


class DeleteStream(Kind):
    kind = JobKind.STREAM_DELETE
    done = "deleted on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_streams.delete_stream(conn, job.target)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is None:
            return _stream_entry(job, "stream.deleted", error)
        Stream.objects.filter(profile_id=job.profile_id, name=job.target).delete()
        Consumer.objects.filter(profile_id=job.profile_id, stream_name=job.target).delete()
        forgotten, _ = rows.forget_definition(job)
        if result["deleted"]:
            return _stream_entry(job, "stream.deleted", error, before=result["before"],
                                 message="deleted")
        if forgotten:  # gone on the broker already, but the team's definition of it goes now
            return _stream_entry(job, "stream.deleted", error,
                                 message="already gone on the broker; its definition was removed")
        return []

    def describe(self, job: Job, result: Result) -> str:
        return job.get_kind_display() if result["deleted"] else "already gone: nothing to delete"


class PurgeStream(Kind):
    kind = JobKind.STREAM_PURGE
    done = "purged on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        params = job.params
        return broker_streams.purge_stream(conn, job.target, subject=params.get("subject", ""),
                                           keep=params.get("keep", 0), seq=params.get("seq", 0))

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        rows.mark_gone(job, error)
        if result is not None:
            rows.store_stream(job, result["info"])
        return _stream_entry(
            job, "stream.purged", error, before=(result or {}).get("state_before"),
            after=(result or {}).get("info", {}).get("state"), changes=job.params or None,
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
        rows.store_definitions(job, configs)
        now = timezone.now()
        rows.store_streams([rows.stream_row(job.profile_id, info, now,
                                            definition=info["config"])
                            for info in result["infos"]])
        rows.note_server(job, result)
        context = audit.Context.of_job(job)
        return [audit.entry("stream.adopted", context, target_type="stream", target_name=name,
                            profile=job.profile, job=job, outcome="succeeded", after=config,
                            message="adopted: its live configuration is now its definition")
                for name, config in configs.items()]

    def summary(self, result: Result) -> Result:
        return {"adopted": len(result["infos"]), "gone": result["gone"],
                **{key: value for key, value in result.items() if key not in {"infos", "gone"}}}

    def describe(self, job: Job, result: Result) -> str:
        gone = f"; {len(result['gone'])} no longer on the server" if result["gone"] else ""
        return f"adopted {len(result['infos'])} stream(s){gone}"


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
        rows.mark_gone(job, error)
        return []

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
        rows.mark_gone(job, error)
        return []

    def describe(self, job: Job, result: Result) -> str:
        return f"read message {result['seq']} ({result['size']} bytes)"


def _message_entry(job: Job, action: str, error: OperationError | None,
                   facts: dict[str, Any] | None, message: str) -> list[AuditEvent]:
    """Subject, sequence and size only: a message's body and headers stay out of the log."""
    return [audit.entry(
        action, audit.Context.of_job(job), target_type="stream", target_name=job.target,
        profile=job.profile, job=job, outcome="failed" if error else "succeeded",
        after=facts, message=error.message if error else message)]


class DeleteMessage(Kind):
    kind = JobKind.MESSAGE_DELETE
    done = "deleted on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_messages.delete_message(conn, job.target, job.params["seq"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        rows.mark_gone(job, error)
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


class KeepAdvisories(Kind):
    """The profile's advisory capture stream, made or removed as its settings now say (they
    may have changed since the job was submitted: the last job converges)."""

    kind = JobKind.ADVISORY_CAPTURE
    done = "the capture stream was set up on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        if job.profile.keeps_advisories:
            return broker_streams.create_stream(conn, stream_config.CAPTURE_CONFIG)
        return broker_streams.delete_stream(conn, stream_config.CAPTURE_STREAM)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        kept = (result or {}).get("info")
        Profile.objects.filter(pk=job.profile_id).update(
            last_capture_at=timezone.now(),
            last_capture_bytes=kept["state"]["bytes"] if kept else None,
            last_capture_error=error.message if error else "",
        )
        if kept:
            rows.store_stream(job, kept)
            return _stream_entry(job, "stream.created", error, after=kept["config"],
                                 message="created to keep advisories while the listener is "
                                         "down") if result["created"] else []
        if result and result["deleted"]:
            Stream.objects.filter(profile_id=job.profile_id, name=job.target).delete()
            return _stream_entry(job, "stream.deleted", error, before=result["before"],
                                 message="deleted: advisories are no longer kept")
        return []

    def describe(self, job: Job, result: Result) -> str:
        if "info" in result:
            return "created" if result["created"] else "in place"
        return "removed" if result["deleted"] else "not on the broker: nothing to remove"


def _consumer_entry(
    job: Job, action: str, error: OperationError | None, message: str, *,
    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> list[AuditEvent]:
    """A consumer's entry names its stream as the target (consumer names are unique only
    within a stream) and the consumer in its message and configs."""
    name = job.params["consumer"]
    return [audit.entry(
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
        rows.mark_consumer_gone(job, error)
        if result is not None:
            rows.store_consumer(job, result["info"])
            rows.note_server(job, result)
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
        rows.mark_consumer_gone(job, error)
        if result is None:
            return _consumer_entry(job, "consumer.changed", error, "", changes=changes)
        before, after = result["before"], result["info"]["config"]
        rows.store_consumer(job, result["info"])
        rows.note_server(job, result)
        return _consumer_entry(job, "consumer.changed", error,
                               "changed" if result["applied"] else "nothing to change",
                               before=before, after=after,
                               changes=consumer_config.diff(before, after, list(changes)))


class DeleteConsumer(Kind):
    kind = JobKind.CONSUMER_DELETE
    done = "deleted on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        return broker_consumers.delete_consumer(conn, job.target, job.params["consumer"])

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        rows.mark_consumer_gone(job, error)
        if result is None:
            return _consumer_entry(job, "consumer.deleted", error, "")
        rows.forget_consumer(job, job.params["consumer"])
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
        rows.mark_consumer_gone(job, error)
        if result is None:
            return _consumer_entry(job, self.action, error, "")
        rows.store_consumer(job, result["info"])
        rows.note_server(job, result)
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


class PlanChanges(Kind):
    """Read the live configs a plan concerns and work out its steps (streams.plans.steps)."""

    kind = JobKind.STREAM_PLAN
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        plan = Plan.objects.get(pk=job.params["plan"])
        if plan.delete_missing:  # every stream, to find those the plan does not want
            read = broker_streams.list_streams(conn)
            infos = read.pop("streams")
        else:
            read = broker_streams.stream_infos(conn, list(plan.desired))
            infos = read.pop("infos")
        steps = planning.steps(
            plan.desired, {info["config"]["name"]: info["config"] for info in infos},
            version=stream_config.parse_version(read["server_version"]),
            cluster_size=read["cluster_size"],
            memphis=job.profile.broker_kind == BrokerKind.MEMPHIS,
            delete_missing=plan.delete_missing)
        return {**read, "steps": steps, "counts": planning.counts(steps)}

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is not None:
            Plan.objects.filter(pk=job.params["plan"]).update(steps=result["steps"])
            rows.note_server(job, result)
        return []

    def summary(self, result: Result) -> Result:
        return {key: value for key, value in result.items() if key != "steps"}

    def describe(self, job: Job, result: Result) -> str:
        return "plan: " + ", ".join(f"{count} {action}"
                                    for action, count in result["counts"].items())


# What each of apply's operations is in the audit log.
_APPLY_ACTIONS = {"create": "stream.created", "update": "stream.changed",
                  "delete": "stream.deleted"}


class ApplyPlan(Kind):
    """Run a plan's steps concurrently on the broker and record each stream's outcome as it
    comes (its definition, its row, its audit entry, the plan and the job's progress), so a
    worker lost halfway leaves every change it made recorded, and a retried job goes on from
    where it stopped. Deletions run only when the apply was confirmed."""

    kind = JobKind.STREAM_APPLY
    done = "applied on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        plan = Plan.objects.get(pk=job.params["plan"])
        todo = [step for step in plan.steps or [] if planning.runnable(
            step, deletes_confirmed=job.params.get("deletes_confirmed", False))]
        ops = [_op(plan, step) for step in todo
               if plan.outcomes.get(step["name"], {}).get("outcome", "failed") == "failed"]
        done = len(todo) - len(ops)
        job.note_progress(done, len(todo))
        for batch in broker_streams.apply_streams(conn, ops):
            done += len(batch)
            with transaction.atomic():
                self._record(job, plan, batch)
                job.note_progress(done, len(todo))
        tally = Counter(plan.outcomes[step["name"]]["outcome"] for step in todo)
        return {"total": len(todo), **tally}

    def _record(self, job: Job, plan: Plan, batch: list[Result]) -> None:
        now = timezone.now()
        context = audit.Context.of_job(job)
        configs: dict[str, dict[str, Any]] = {}
        stream_rows, gone, entries = [], [], []
        for answer in batch:
            name, op = answer["name"], answer["op"]
            outcome, entry = _applied(op, answer)
            plan.outcomes[name] = {"outcome": outcome, "message": answer["error"],
                                   "err_code": answer["err_code"]}
            if entry is not None:
                entries.append(audit.entry(
                    _APPLY_ACTIONS[op], context, target_type="stream", target_name=name,
                    profile=job.profile, job=job,
                    outcome="failed" if answer["error"] else "succeeded",
                    message=answer["error"] or f"{outcome} by plan #{plan.pk}", **entry))
            if answer["error"]:
                continue
            if op == "delete":
                gone.append(name)
            else:
                configs[name] = answer["info"]["config"]
                stream_rows.append(rows.stream_row(job.profile_id, answer["info"], now,
                                                   definition=configs[name]))
        rows.store_definitions(job, configs)
        rows.store_streams(stream_rows)
        Stream.objects.filter(profile_id=job.profile_id, name__in=gone).delete()
        StreamDefinition.objects.filter(profile_id=job.profile_id, name__in=gone).delete()
        audit.append(entries)
        Plan.objects.filter(pk=plan.pk).update(outcomes=plan.outcomes)

    def describe(self, job: Job, result: Result) -> str:
        return ", ".join(f"{count} {outcome}" for outcome, count in result.items()
                         if outcome != "total") or "nothing to do"


def _op(plan: Plan, step: planning.Step) -> dict[str, Any]:
    name, action = step["name"], step["action"]
    if action == planning.CREATE:
        return {"name": name, "op": "create", "config": {**plan.desired[name], "name": name}}
    if action == planning.UPDATE:
        return {"name": name, "op": "update", "changes": step["changes"]}
    return {"name": name, "op": "delete"}


def _applied(op: str, answer: Result) -> tuple[str, dict[str, Any] | None]:
    """A stream's outcome in one word, and what its audit entry carries (None: no entry,
    because nothing changed)."""
    if answer["error"]:
        return "failed", {}
    if op == "create":
        config = answer["info"]["config"]
        return ("created", {"after": config}) if answer["created"] else ("unchanged", None)
    if op == "update":
        if not answer["applied"]:
            return "unchanged", None
        before, after = answer["before"], answer["info"]["config"]
        return "updated", {"before": before, "after": after,
                           "changes": definitions.drift(before, after)}
    return ("deleted", {"before": answer["before"]}) if answer["deleted"] else ("gone", None)


KINDS: dict[str, Kind] = {kind.kind: kind() for kind in (
    TestConnection, ListStreams, ReadStream, CreateStream, UpdateStream, DeleteStream,
    PurgeStream, AdoptStreams, BrowseMessages, DownloadMessage, DeleteMessage, PublishMessage,
    KeepAdvisories, CreateConsumer, UpdateConsumer, DeleteConsumer, PauseConsumer,
    ResumeConsumer, PlanChanges, ApplyPlan)}
