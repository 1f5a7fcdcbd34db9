"""Broker operations as jobs: the write path views use (Job + audit entry in one transaction,
enqueued on commit) and the steps the worker takes (claim, run, record the outcome)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from kombu.exceptions import OperationalError

from streams import audit, jetstream, sql, stream_config
from streams.jetstream import BrokerError
from streams.models import (
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Profile,
    Stream,
    StreamDefinition,
    StreamStatus,
    WorkerHeartbeat,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Operation:
    """How the worker runs one kind of job: `call` talks to the broker (no database writes),
    `record` stores what came back in our own rows, whatever the outcome, and returns the audit
    entries that describe it (written in one append with the job's own)."""

    call: Callable[[Job, jetstream.Connection], dict[str, Any]]
    record: Callable[[Job, dict[str, Any] | None, BrokerError | None], list[AuditEvent]]
    target_type: str
    done: str  # what the broker did, for a job whose outcome could not be recorded
    retry: bool = True  # retry retryable failures with backoff
    # What the job's closing audit entry says it did (default: the kind's name).
    describe: Callable[[Job, dict[str, Any]], str] | None = None
    # What of the result the Job row keeps (a 10,000-stream listing lives in Stream rows).
    summary: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def _check_connection(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    # nats-py tries each server twice within the connect timeout; the rest is the account request.
    timeout = 2 * conn.connect_timeout * max(len(conn.servers), 1) + 5
    return jetstream.check_connection(conn, timeout=timeout)


def _record_check(job: Job, result: dict[str, Any] | None,
                  error: BrokerError | None) -> list[AuditEvent]:
    Profile.objects.filter(pk=job.profile_id).update(
        last_check_at=timezone.now(),
        last_check_ok=error is None,
        last_server_version=(result or {}).get("version", ""),
        last_check_error=error.message if error else "",
    )
    return []


# Streams ---------------------------------------------------------------------------------------

SUBJECTS_KEPT = 100  # per-subject counts kept for the detail page
STREAM_ROW_FIELDS = [
    "status", "status_reason", "system_kind", "subjects", "subjects_text", "storage", "replicas",
    "retention", "messages", "bytes", "consumers", "first_seq", "first_ts", "last_seq",
    "last_ts", "info", "read_at",
]


def _list_streams(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    return jetstream.list_streams(conn)


def _stream_info(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    return jetstream.stream_info(conn, job.target)


def _create_stream(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    return jetstream.create_stream(conn, job.params["config"])


def _update_stream(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    return jetstream.update_stream(conn, job.target, job.params["changes"])


def _delete_stream(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    return jetstream.delete_stream(conn, job.target)


def _purge_stream(job: Job, conn: jetstream.Connection) -> dict[str, Any]:
    params = job.params
    return jetstream.purge_stream(conn, job.target, subject=params.get("subject", ""),
                                  keep=params.get("keep", 0), seq=params.get("seq", 0))


def _timestamp(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):  # Go's zero time: no message yet
        return None
    return datetime.fromisoformat(text)


def _stream_row(profile_id: int, info: dict[str, Any], read_at: datetime,
                status: str = StreamStatus.OK, reason: str = "") -> dict[str, Any]:
    """A Stream row's column values (plain values: thousands are stored at once)."""
    config, state = info.get("config") or {}, info.get("state")
    subjects = config.get("subjects") or []
    if state is None:  # an unreachable stream: its config is known, its state is not
        state = dict.fromkeys(("messages", "bytes", "consumer_count", "first_seq", "last_seq"))
    return {
        "profile_id": profile_id, "name": config["name"], "status": status,
        "status_reason": reason[:255], "system_kind": stream_config.system_kind(config["name"]),
        "subjects": subjects, "subjects_text": " ".join(subjects),
        "storage": config.get("storage", ""), "replicas": config.get("num_replicas") or 1,
        "retention": config.get("retention", ""), "messages": state.get("messages", 0),
        "bytes": state.get("bytes", 0), "consumers": state.get("consumer_count", 0),
        "first_seq": state.get("first_seq", 0), "first_ts": _timestamp(state.get("first_ts")),
        "last_seq": state.get("last_seq", 0), "last_ts": _timestamp(state.get("last_ts")),
        "info": info, "read_at": read_at,
    }


def _unreadable_row(profile_id: int, name: str, status: str, reason: str,
                    read_at: datetime) -> dict[str, Any]:
    """A stream the cluster names but cannot describe."""
    return {**_stream_row(profile_id, {"config": {"name": name}}, read_at, status, reason),
            "storage": "", "replicas": None, "retention": "", "info": None}


def _store_streams(rows: list[dict[str, Any]]) -> None:
    """Upsert Stream rows with one statement per batch: the ORM's bulk_create spends ~0.4 ms a
    row preparing values, and a 10,000-stream listing must be stored in well under a second."""
    statement = sql.insert(Stream, ["profile", "name", *STREAM_ROW_FIELDS],
                           upsert_on=["profile", "name"])
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            cursor.executemany(statement.sql, [statement.params(row)
                                               for row in rows[start:start + 1000]])


def _note_server(job: Job, result: dict[str, Any]) -> None:
    """Stream jobs see the server's version too: keep the form's version gates current."""
    version = result.get("server_version")
    if version and job.profile is not None and job.profile.last_server_version != version:
        Profile.objects.filter(pk=job.profile_id).update(last_server_version=version)


def _store_definition(job: Job) -> None:
    """What the user asked for, in one upsert."""
    statement = sql.insert(StreamDefinition,
                           ["profile", "name", "config", "job", "updated_by", "updated_at"],
                           upsert_on=["profile", "name"])
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params({
            "profile_id": job.profile_id, "name": job.target, "config": job.params["config"],
            "job_id": job.pk, "updated_by": job.actor_name, "updated_at": timezone.now(),
        }))


def _record_list(job: Job, result: dict[str, Any] | None,
                 error: BrokerError | None) -> list[AuditEvent]:
    if result is None:
        return []
    now = timezone.now()
    unreadable: dict[str, tuple[str, str]] = dict.fromkeys(
        result["missing"], (StreamStatus.MISSING, "no replica of this stream answered"))
    unreadable.update((name, (StreamStatus.OFFLINE, reason))
                      for name, reason in result["offline"].items())
    rows = {}
    for info in result["streams"]:
        name = info["config"]["name"]
        rows[name] = _stream_row(job.profile_id, info, now,
                                 *unreadable.pop(name, (StreamStatus.OK, "")))
    for name, (status, reason) in unreadable.items():  # known by name only
        rows[name] = _unreadable_row(job.profile_id, name, status, reason, now)
    _store_streams(list(rows.values()))
    # Streams that were not in this listing are gone.
    Stream.objects.filter(profile_id=job.profile_id, read_at__lt=now).delete()
    _note_server(job, result)
    return []


def _summarise_list(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "streams"}


def _summarise_info(result: dict[str, Any]) -> dict[str, Any]:
    """Keep the largest per-subject counts only: a stream may have millions of subjects."""
    info = result.get("info")
    subjects = ((info or {}).get("state") or {}).get("subjects")
    if not subjects or len(subjects) <= SUBJECTS_KEPT:
        return result
    largest = sorted(subjects.items(), key=lambda item: -item[1])[:SUBJECTS_KEPT]
    state = {**info["state"], "subjects": dict(largest), "subjects_truncated": True}
    return {**result, "info": {**info, "state": state}}


def _record_info(job: Job, result: dict[str, Any] | None,
                 error: BrokerError | None) -> list[AuditEvent]:
    _mark_gone(job, error)
    if result is not None:
        _store_streams([_stream_row(job.profile_id, _summarise_info(result)["info"],
                                    timezone.now())])
        _note_server(job, result)
    return []


def _audit_stream(
    job: Job, action: str, error: BrokerError | None, *, before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None, changes: dict[str, Any] | None = None,
    message: str = "",
) -> list[AuditEvent]:
    return [audit.entry(
        action, audit.Context.of_job(job), target_type="stream", target_name=job.target,
        profile=job.profile, job=job, outcome="failed" if error else "succeeded",
        before=before, after=after, changes=changes,
        message=error.message if error else message,
    )]


def _record_create(job: Job, result: dict[str, Any] | None,
                   error: BrokerError | None) -> list[AuditEvent]:
    asked = job.params["config"]
    if result is not None:
        _store_streams([_stream_row(job.profile_id, result["info"], timezone.now())])
        _note_server(job, result)
        if not result["created"]:
            return []  # nothing changed: the job's own entry says so
        _store_definition(job)
    return _audit_stream(job, "stream.created", error,
                         after=result["info"]["config"] if result else asked, message="created")


def _describe_create(job: Job, result: dict[str, Any]) -> str:
    if result.get("created", True):
        return job.get_kind_display()
    earlier = " (an earlier attempt of this job may have made it)" if job.attempts > 1 else ""
    return f"already existed with this configuration: nothing changed{earlier}"


def _record_update(job: Job, result: dict[str, Any] | None,
                   error: BrokerError | None) -> list[AuditEvent]:
    changes = job.params["changes"]
    if result is None:
        _mark_gone(job, error)
        return _audit_stream(job, "stream.changed", error, changes=changes)
    before, after = result["before"], result["info"]["config"]
    _store_streams([_stream_row(job.profile_id, result["info"], timezone.now())])
    _store_definition(job)
    _note_server(job, result)
    return _audit_stream(job, "stream.changed", error, before=before, after=after,
                         changes=stream_config.diff(before, after, list(changes)),
                         message="changed" if result["applied"] else "nothing to change")


def _record_delete(job: Job, result: dict[str, Any] | None,
                   error: BrokerError | None) -> list[AuditEvent]:
    if result is None:
        return _audit_stream(job, "stream.deleted", error)
    Stream.objects.filter(profile_id=job.profile_id, name=job.target).delete()
    forgotten, _ = StreamDefinition.objects.filter(profile_id=job.profile_id,
                                                   name=job.target).delete()
    if result["deleted"]:
        return _audit_stream(job, "stream.deleted", error, before=result["before"],
                             message="deleted")
    if forgotten:  # gone on the broker already, but the team's definition of it goes now
        return _audit_stream(job, "stream.deleted", error,
                             message="already gone on the broker; its definition was removed")
    return []


def _describe_delete(job: Job, result: dict[str, Any]) -> str:
    return job.get_kind_display() if result["deleted"] else "already gone: nothing to delete"


def _mark_gone(job: Job, error: BrokerError | None) -> None:
    """A job found the stream deleted (outside the dashboard): the row says so until the next
    listing drops it."""
    if error is not None and error.err_code == jetstream.NOT_FOUND:
        Stream.objects.filter(profile_id=job.profile_id, name=job.target).update(
            status=StreamStatus.GONE, status_reason=f"not on the server at "
            f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC: deleted outside the dashboard?")


def _record_purge(job: Job, result: dict[str, Any] | None,
                  error: BrokerError | None) -> list[AuditEvent]:
    _mark_gone(job, error)
    if result is not None:
        _store_streams([_stream_row(job.profile_id, result["info"], timezone.now())])
    return _audit_stream(
        job, "stream.purged", error, before=(result or {}).get("state_before"),
        after=(result or {}).get("info", {}).get("state"), changes=job.params or None,
        message=f"purged {result['purged']} message(s)" if result else "",
    )


OPERATIONS: dict[str, Operation] = {
    # The answer is the point of a test: report the first failure instead of retrying.
    JobKind.TEST_CONNECTION: Operation(_check_connection, _record_check, "profile",
                                       "the server answered", retry=False),
    JobKind.STREAM_LIST: Operation(_list_streams, _record_list, "profile",
                                   "listed on the broker", summary=_summarise_list),
    JobKind.STREAM_INFO: Operation(_stream_info, _record_info, "stream",
                                   "read from the broker", summary=_summarise_info),
    JobKind.STREAM_CREATE: Operation(_create_stream, _record_create, "stream",
                                     "created on the broker", describe=_describe_create),
    JobKind.STREAM_UPDATE: Operation(_update_stream, _record_update, "stream",
                                     "changed on the broker"),
    JobKind.STREAM_DELETE: Operation(_delete_stream, _record_delete, "stream",
                                     "deleted on the broker", describe=_describe_delete),
    JobKind.STREAM_PURGE: Operation(_purge_stream, _record_purge, "stream",
                                    "purged on the broker"),
}


# Submitting (web process) ----------------------------------------------------------------------


def submit(
    kind: str, profile: Profile, context: audit.Context, *, target: str = "",
    params: dict[str, Any] | None = None,
) -> Job:
    """Create the job and its audit entry atomically; enqueue only once both are committed."""
    operation = OPERATIONS[kind]
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            profile=profile,
            profile_name=profile.name,
            target=target or profile.name,
            params=params or {},
            actor=context.actor,
            actor_name=context.actor.get_username() if context.actor else "",
            ip=context.ip,
            user_agent=context.user_agent,
            request_id=context.request_id,
        )
        audit.record(
            "job.requested", context, target_type=operation.target_type,
            target_name=job.target, profile=profile, job=job, outcome="requested",
            after=job.params or None, message=job.get_kind_display(),
        )
        transaction.on_commit(partial(enqueue, job))
    return job


def enqueue(job: Job) -> None:
    """Hand the job to a worker; fail it (in place too) when the queue is unreachable."""
    from streams.tasks import run_job

    try:
        run_job.apply_async(args=[job.pk])
    except OperationalError as exc:
        log.warning("job %s not enqueued: %s", job.pk, exc)
        fail(job, BrokerError("task queue unreachable: the job could not be handed to a "
                              "worker (is Redis running?)"), expected=JobStatus.QUEUED)


# Running (worker process) ----------------------------------------------------------------------


class ProfileBusy(Exception):
    """Another job of the same profile is running: this one waits its turn (see claim)."""


def claim(job_id: int) -> Job | None:
    """Mark a queued job running, unless another job of its profile is running: one profile's
    jobs run one at a time, so an unreachable or slow broker holds one worker slot rather than
    all of them, and two writes to one stream never overlap. None when someone else has the job
    or it has ended (a redelivered or duplicated task is a no-op); ProfileBusy when it must
    wait its turn."""
    now = timezone.now()
    running = Job.objects.filter(profile_id=OuterRef("profile_id"), status=JobStatus.RUNNING)
    with transaction.atomic():
        if connection.features.has_select_for_update:
            # PostgreSQL: one profile's claims take turns on its row, so that two of them never
            # both see no running job. (SQLite's IMMEDIATE transactions already take turns.)
            list(Profile.objects.select_for_update(of=("self",)).filter(jobs=job_id).only("pk"))
        claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).exclude(
            Exists(running)).update(
            status=JobStatus.RUNNING,
            started_at=now,
            deadline=now + timedelta(seconds=settings.JOB_RUN_TIMEOUT),
            attempts=F("attempts") + 1,
        )
    if claimed:
        return Job.objects.select_related("profile", "actor").get(pk=job_id)
    if Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).exists():
        raise ProfileBusy
    return None


def may_retry(job: Job, error: BrokerError) -> bool:
    return (error.retryable and OPERATIONS[job.kind].retry
            and job.attempts < settings.JOB_MAX_ATTEMPTS)


def execute(job: Job) -> dict[str, Any]:
    """Run the job's broker call. Raises BrokerError."""
    if job.profile is None:
        raise BrokerError("the connection profile was deleted")
    return OPERATIONS[job.kind].call(job, jetstream.Connection.from_profile(job.profile))


def requeue(job: Job, error: BrokerError) -> bool:
    """Put a job back in the queue for another attempt after a retryable failure."""
    return bool(Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=JobStatus.QUEUED, error=f"attempt {job.attempts} failed: {error.message}",
        deadline=None,
    ))


def succeed(job: Job, result: dict[str, Any]) -> None:
    operation = OPERATIONS[job.kind]
    try:
        _finish(job, JobStatus.SUCCEEDED, JobStatus.RUNNING, result=result,
                stored=operation.summary(result) if operation.summary else result)
    except Exception as exc:
        # The broker did its part: say so, rather than leave the job to look like a dead worker.
        log.exception("job %s (%s): recording the outcome failed", job.pk, job.kind)
        _finish(job, JobStatus.FAILED, JobStatus.RUNNING, record=False, error=BrokerError(
            f"{operation.done}; recording the outcome failed: {type(exc).__name__}: "
            f"{str(exc)[:200]}"))


def fail(job: Job, error: BrokerError, expected: str = JobStatus.RUNNING) -> None:
    _finish(job, JobStatus.FAILED, expected, error=error)


def _finish(
    job: Job, status: str, expected: str, *, result: dict[str, Any] | None = None,
    stored: dict[str, Any] | None = None, error: BrokerError | None = None, record: bool = True,
) -> None:
    """The outcome on the job (row and object), what it changed in our rows (unless `record` is
    off), and the audit entries, in one transaction. Nothing happens when the job is no longer
    `expected`: the reaper or a duplicate task ended it meanwhile."""
    outcome = {
        "status": status,
        "finished_at": timezone.now(),
        "result": stored,
        "error": error.message if error else "",
        "err_code": error.err_code if error else None,
        "error_field": error.field if error else "",
    }
    ours = Job.objects.filter(pk=job.pk, status=expected)
    with transaction.atomic():
        if not ours.filter(profile_id=job.profile_id).update(**outcome):
            if not ours.update(**outcome):
                return
            job.profile = None  # deleted while the job ran: nothing of ours to record
        for name, value in outcome.items():
            setattr(job, name, value)
        operation = OPERATIONS[job.kind]
        recorded = record and job.profile is not None
        entries = operation.record(job, result, error) if recorded else []
        audit.append([*entries, audit.entry(
            "job.finished", audit.Context.of_job(job), target_type=operation.target_type,
            target_name=job.target, profile=job.profile, job=job, outcome=status,
            message=error.message if error else (
                operation.describe(job, result) if operation.describe and result is not None
                else job.get_kind_display()),
        )])


def reap_overdue(job_id: int | None = None) -> int:
    """Fail jobs nobody will finish: running past their deadline (the worker died) or queued
    longer than JOB_QUEUE_TIMEOUT, saying why they were not picked up. Returns how many were
    failed."""
    now = timezone.now()
    jobs = Job.objects.filter(pk=job_id) if job_id is not None else Job.objects.all()
    running = jobs.filter(status=JobStatus.RUNNING, deadline__lt=now)
    queued = jobs.filter(
        status=JobStatus.QUEUED,
        created_at__lt=now - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT),
    )
    reaped = 0
    for job in running.select_related("profile", "actor"):
        fail(job, BrokerError("the worker stopped before finishing the job (still running "
                              "past its deadline)"))
        reaped += 1
    for job in queued.select_related("profile", "actor"):
        fail(job, BrokerError(_why_not_picked_up(job, now)), expected=JobStatus.QUEUED)
        reaped += 1
    return reaped


def _why_not_picked_up(job: Job, now: datetime) -> str:
    waited = f"{settings.JOB_QUEUE_TIMEOUT:g} s"
    if Job.objects.filter(profile_id=job.profile_id, status=JobStatus.RUNNING).exists():
        return (f"it waited {waited} behind another job on this connection, which is still "
                "running (a connection runs one job at a time)")
    last_seen = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at",
                                                                         flat=True).first()
    if last_seen and (now - last_seen).total_seconds() < 3 * settings.WORKER_HEARTBEAT_INTERVAL:
        return f"no worker slot came free within {waited}: the workers were busy with other jobs"
    since = (f" (the last one was seen {int((now - last_seen).total_seconds())} s ago)"
             if last_seen else "")
    return f"no worker picked the job up within {waited}: no worker is running{since}"


def note_worker_alive(name: str) -> None:
    WorkerHeartbeat.objects.update_or_create(name=name[:255],
                                             defaults={"seen_at": timezone.now()})
