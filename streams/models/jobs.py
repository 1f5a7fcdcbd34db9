"""Broker operations: the Job row that owns its life (submit, claim, finish, fail, reap) and the
workers' heartbeats the reaper consults."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from celery import current_app
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, connections, models, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from streams import metrics, policy
from streams.errors import OperationError, Stopped
from streams.jobs import wakeup
from streams.models.audit import Acting, AuditEvent
from streams.models.profiles import Profile
from streams.progress import seconds_left, time_left

log = logging.getLogger(__name__)


class JobKind(models.TextChoices):
    TEST_CONNECTION = "test_connection", "Test connection"
    STREAM_LIST = "stream_list", "List streams"
    STREAM_INFO = "stream_info", "Read stream"
    STREAM_CREATE = "stream_create", "Create stream"
    STREAM_UPDATE = "stream_update", "Edit stream"
    STREAM_DELETE = "stream_delete", "Delete stream"
    STREAM_PURGE = "stream_purge", "Purge stream"
    STREAM_ADOPT = "stream_adopt", "Adopt streams"
    MESSAGE_LIST = "message_list", "Browse messages"
    MESSAGE_DELETE = "message_delete", "Delete message"
    MESSAGE_PUBLISH = "message_publish", "Publish message"
    MESSAGE_GET = "message_get", "Download message"
    MESSAGE_READ = "message_read", "Read message"
    ADVISORY_CAPTURE = "advisory_capture", "Advisory capture stream"
    # A consumer job's target is its stream; the consumer's name is in its params.
    CONSUMER_CREATE = "consumer_create", "Create consumer"
    CONSUMER_UPDATE = "consumer_update", "Edit consumer"
    CONSUMER_DELETE = "consumer_delete", "Delete consumer"
    CONSUMER_PAUSE = "consumer_pause", "Pause consumer"
    CONSUMER_RESUME = "consumer_resume", "Resume consumer"
    STREAM_PLAN = "stream_plan", "Plan changes"
    STREAM_APPLY = "stream_apply", "Apply plan"
    # The scheduler's periodic check of a connection (streams.checks): nobody asks for it.
    CONNECTION_CHECK = "connection_check", "Check connection"

    @property
    def target_type(self) -> str:
        """What a job of this kind acts on, as its audit entries name it."""
        return ("profile" if self in {JobKind.TEST_CONNECTION, JobKind.CONNECTION_CHECK,
                                      JobKind.STREAM_LIST,
                                      JobKind.STREAM_ADOPT, JobKind.STREAM_PLAN,
                                      JobKind.STREAM_APPLY} else "stream")

    @property
    def family(self) -> str:
        """What it acts on, by the name of its kind: "stream", "consumer", "message"…"""
        return self.value.partition("_")[0]

    @property
    def reads(self) -> bool:
        """Whether a job of this kind only reads what a page shows. It changes nothing, so it
        writes no entry of its own to the audit log, which records changes and security events
        (who read which messages is recorded with settings.AUDIT_MESSAGE_READS). A connection
        test stays recorded: it is someone trying the profile's credentials."""
        return self in {JobKind.STREAM_LIST, JobKind.STREAM_INFO, JobKind.MESSAGE_LIST,
                        JobKind.MESSAGE_GET, JobKind.MESSAGE_READ, JobKind.CONNECTION_CHECK}

    @property
    def stream_changes(self) -> frozenset[str]:
        """The changes to streams a job of this kind makes, as the server's advisories name
        them: how the listener tells the dashboard's own changes from those made outside when
        the server names no client (streams.outside). An apply makes any, to its plan's
        streams; the others to their target."""
        return {JobKind.STREAM_CREATE: frozenset({"created"}),
                JobKind.STREAM_UPDATE: frozenset({"updated"}),
                JobKind.STREAM_DELETE: frozenset({"deleted"}),
                JobKind.STREAM_APPLY: frozenset({"created", "updated", "deleted"}),
                JobKind.ADVISORY_CAPTURE: frozenset({"created", "deleted"}),
                }.get(self, frozenset())

    @property
    def stops_midway(self) -> bool:
        """Whether a job of this kind may be stopped while it runs, because stopping leaves
        nothing half done: an apply stops between streams (those under way finish, no other
        starts) and records each stream's outcome as it comes."""
        return self == JobKind.STREAM_APPLY

    @property
    def action(self) -> str:
        """What a job of this kind does, as streams.policy names it: asked when it is
        submitted and again when a worker runs it."""
        return {JobKind.TEST_CONNECTION: "test",
                JobKind.STREAM_CREATE: "stream.create",
                JobKind.STREAM_UPDATE: "stream.edit",
                JobKind.STREAM_DELETE: "stream.delete",
                JobKind.STREAM_PURGE: "stream.purge",
                JobKind.STREAM_ADOPT: "definitions.adopt",
                JobKind.MESSAGE_DELETE: "message.delete",
                JobKind.MESSAGE_PUBLISH: "message.publish",
                JobKind.ADVISORY_CAPTURE: "profile.edit",
                JobKind.CONSUMER_CREATE: "consumer.create",
                JobKind.CONSUMER_UPDATE: "consumer.edit",
                JobKind.CONSUMER_DELETE: "consumer.delete",
                JobKind.CONSUMER_PAUSE: "consumer.pause",
                JobKind.CONSUMER_RESUME: "consumer.pause",
                JobKind.STREAM_PLAN: "plan",
                JobKind.STREAM_APPLY: "plan.apply",
                }.get(self, "view" if self.reads else "")


class JobStatus(models.TextChoices):
    HELD = "held", "Awaiting approval"  # on a profile that requires approval (streams.approvals)
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ProfileBusy(Exception):
    """Another job of the same profile is running: this one waits its turn, in the database
    (see claim and hand_on)."""


class Recording(Protocol):
    """What a job's kind says about its end (streams.jobs.kinds.Kind: the worker's; the web
    process never imports those)."""

    done: str

    def record(self, job: Job, result: dict[str, Any] | None,
               error: OperationError | None) -> list[AuditEvent]: ...

    def summary(self, result: dict[str, Any]) -> dict[str, Any]: ...

    def describe(self, job: Job, result: dict[str, Any]) -> str: ...


class JobQuerySet(models.QuerySet["Job"]):
    def seen_by(self, user: Any) -> JobQuerySet:
        """The jobs `user` sees: those of their teams' connections, and their own."""
        if getattr(user, "is_superuser", False):
            return self
        return self.filter(Q(profile__in=policy.profiles(user)) | Q(actor=user))

    def asked(self) -> JobQuerySet:
        """The jobs people asked for: not the scheduler's connection checks (a few a minute a
        connection), which are listed when their kind is asked for."""
        return self.exclude(kind=JobKind.CONNECTION_CHECK)

    def submit(
        self, kind: str, profile: Profile, context: Acting, *, target: str = "",
        params: dict[str, Any] | None = None, audited: dict[str, Any] | None = None,
    ) -> Job:
        """The one way a job starts: its row and, unless it only reads, the entry saying who
        asked for it, in one transaction, handed to a worker once both are committed.
        `audited`: what the entry records of the params when not their public part (which
        leaves a message's body and headers out of the log). Refused (PermissionDenied) when
        the requester may not do it on this profile: views ask first, this is the door. On a
        profile that requires approval a change is held until another member approves it."""
        with transaction.atomic():
            job = self.model(
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
            if reason := policy.job_refusal(job):
                raise PermissionDenied(reason)
            held = policy.needs_approval(job)
            if held:
                job.status = JobStatus.HELD
            job.save(force_insert=True)
            if not JobKind(kind).reads:  # a read is on the Job row alone
                AuditEvent.objects.record(
                    "job.requested", context, target_type=JobKind(kind).target_type,
                    target_name=job.target, profile=profile, job=job, outcome="requested",
                    after=(job.public_params if audited is None else audited) or None,
                    message=job.get_kind_display(),
                )
            if held:  # runs once another member approves (streams.approvals)
                Approval.objects.create(
                    job=job, sighting=profile.streams.filter(name=job.target).values_list(
                        "info__config", flat=True).first(),
                    expires_at=timezone.now() + timedelta(hours=settings.APPROVAL_HOURS))
                AuditEvent.objects.record(
                    "approval.requested", context, target_type=JobKind(kind).target_type,
                    target_name=job.target, profile=profile, job=job, outcome="requested",
                    message=f"{job.get_kind_display()}: held until another member of "
                            f"{profile.team.name} approves it")
            else:
                transaction.on_commit(job.enqueue)
        return job

    def _reads(self, kind: str, profile: Profile, target: str) -> JobQuerySet:
        reads = self.filter(profile=profile, kind=kind)
        return reads.filter(target=target) if target else reads

    def read_due(self, kind: str, profile: Profile, target: str = "") -> bool:
        """Whether the rows a read of this kind stores (a profile's streams, one stream's) are
        older than READ_AGAIN_AFTER, or were never read, with no such read queued or running.
        A read that failed counts as one: its page shows the error rather than asking at once
        again."""
        recent = timezone.now() - timedelta(seconds=settings.READ_AGAIN_AFTER)
        return not self._reads(kind, profile, target).filter(
            Q(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)) | Q(finished_at__gte=recent)
        ).exists()

    def read_again(self, kind: str, profile: Profile, context: Acting, *,
                   target: str = "") -> Job | None:
        """The read a page asks for as it opens: the one queued or running already, else a new
        one when the rows are due (read_due), else None (read meanwhile). Submitted under a
        lock on the profile's row on PostgreSQL (SQLite's IMMEDIATE transactions take turns),
        so pages opened together share one read."""
        with transaction.atomic():
            if connection.features.has_select_for_update:
                list(Profile.objects.select_for_update().filter(pk=profile.pk).only("pk"))
            ongoing = self._reads(kind, profile, target).filter(
                status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).order_by("-pk").first()
            if ongoing is not None:
                return ongoing
            if not self.read_due(kind, profile, target):
                return None
            return self.submit(kind, profile, context, target=target)

    def claim(self, job_id: int) -> Job | None:
        """Mark a queued job running, unless another job of its profile is running: one
        profile's jobs run one at a time, so an unreachable or slow broker holds one worker slot
        rather than all of them, and two writes to one stream never overlap. None when someone
        else has the job or it has ended (a redelivered or duplicated task is a no-op);
        ProfileBusy when it must wait its turn: the worker lets go of it, and the running job
        hands it on when it stops (hand_on)."""
        running = self.filter(profile_id=OuterRef("profile_id"), status=JobStatus.RUNNING)
        with transaction.atomic(using=self.db):
            if connections[self.db].features.has_select_for_update:
                # PostgreSQL: one profile's claims, and its jobs' ends (Job._end), take turns
                # on its row, so that two claims never both see no running job. (SQLite's
                # IMMEDIATE transactions take turns.)
                list(Profile.objects.select_for_update(of=("self",)).filter(jobs=job_id)
                     .only("pk"))
            # Dated once it has its turn: after the end of the job before it, never earlier.
            now = timezone.now()
            claimed = self.filter(pk=job_id, status=JobStatus.QUEUED).exclude(
                Exists(running)).update(
                status=JobStatus.RUNNING,
                started_at=now,
                deadline=now + timedelta(seconds=settings.JOB_RUN_TIMEOUT),
                attempts=F("attempts") + 1,
            )
        if claimed:
            job = self.select_related("profile", "actor").get(pk=job_id)
            metrics.QUEUE_WAIT.labels(job.kind).observe(
                max(0.0, (job.started_at - job.queued_at).total_seconds()))
            return job
        if self.filter(pk=job_id, status=JobStatus.QUEUED).exists():
            raise ProfileBusy
        return None

    def hand_on(self, profile_id: int | None, *, besides: int | None = None) -> None:
        """A job of this profile stopped running (it ended, or went back to wait for another
        attempt): hand the profile's longest-waiting job to a worker. A job that found its
        profile busy was let go by its worker (claim): held there for a retry, it would be lost
        with a worker that dies, and wait until the reaper failed it. Handed on twice, or
        while its own task is still on its way, it is claimed once. `besides`: the job that
        went back to wait, not handed on ahead of the others."""
        if profile_id is None:
            return
        waiting = self.filter(profile_id=profile_id, status=JobStatus.QUEUED).exclude(
            pk=besides).order_by("queued_at", "pk").values_list("pk", flat=True).first()
        if waiting is None:
            return
        try:
            current_app.send_task(Job.TASK, args=[waiting])
        except OperationalError as exc:  # it waits for the profile's next job to end
            log.warning("job %s not handed to a worker: %s", waiting, exc)

    def holding_messages(self) -> JobQuerySet:
        """Jobs whose result still holds messages they read (Job.MESSAGE_RESULTS)."""
        held = Q()
        for kind, key in Job.MESSAGE_RESULTS.items():
            held |= Q(kind=kind, result__has_key=key)
        return self.filter(held, status=JobStatus.SUCCEEDED)

    def forget_messages_of(self, profile_id: int, stream: str, seq: int | None = None) -> int:
        """Results holding message `seq` of a stream (any of its messages when None) drop
        their messages: the dashboard deleted it, or purged or deleted the stream."""
        jobs = self.holding_messages().filter(profile_id=profile_id, target=stream)
        return sum(job.forget_messages() for job in jobs.only("pk", "kind", "result")
                   if seq is None or seq in job.held_seqs)

    def overdue(self) -> tuple[JobQuerySet, JobQuerySet]:
        """Jobs nobody will finish (as Job.is_overdue): (running past their deadline, as when
        their worker died; queued longer than JOB_QUEUE_TIMEOUT)."""
        now = timezone.now()
        jobs = self.select_related("profile", "actor")
        return (jobs.filter(status=JobStatus.RUNNING, deadline__lt=now),
                jobs.filter(status=JobStatus.QUEUED, queued_at__lt=now - timedelta(
                    seconds=settings.JOB_QUEUE_TIMEOUT)))

    def reap_overdue(self) -> int:
        """Fail the jobs nobody will finish, saying why; returns how many were failed. Run on
        timers of each worker's main process (memphisadmin.celery.Housekeeping)."""
        running, queued = self.overdue()
        reaped = 0
        for job in running:
            job.fail(OperationError(Job.WORKER_STOPPED))
            reaped += 1
        now = timezone.now()
        for job in queued:
            job.fail(OperationError(job._why_not_picked_up(now)), expected=JobStatus.QUEUED)
            reaped += 1
        metrics.REAPED.inc(reaped)
        return reaped

    def forget_expired_messages(self) -> int:
        """Messages read by a browse, or for a download never taken (the user left the job's
        page): after Job.MESSAGES_KEPT the row keeps what was read, not the messages. Returns
        how many jobs forgot theirs."""
        stale = self.holding_messages().filter(
            finished_at__lt=timezone.now() - Job.MESSAGES_KEPT)
        return sum(job.forget_messages() for job in stale.only("pk", "kind", "result"))


class Job(models.Model):
    """One broker operation. The row is the source of truth for its progress and outcome, and
    the job owns its life: Job.objects.submit(), then a worker's claim and finish() or fail()
    (or the reaper's fail()), while a request may wait() for its end."""

    FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)
    # The worker's task, sent by name: the web process never imports the worker's modules.
    TASK = "streams.run_job"
    WORKER_STOPPED = ("the worker stopped before finishing the job (still running past its "
                      "deadline)")
    # How long a job's row keeps the messages it read (MESSAGE_RESULTS): a browse's page for
    # its reader to look at, a download for its reader to take (views.messages).
    MESSAGES_KEPT = timedelta(minutes=10)
    # Params the worker needs while the job runs and nobody may read afterwards, or on the job's
    # page meanwhile: a published message's body and headers (its audit entry keeps neither),
    # and what a page showed of the object it acts on (compared with the live one, then moot).
    PRIVATE_PARAMS = frozenset({"data", "headers", "seen"})
    # Where a job's result holds the messages it read, for the user who asked and for minutes
    # (JobQuerySet.forget_expired_messages): a browse's page, a download's whole message, one
    # message read for its own page.
    MESSAGE_RESULTS = {JobKind.MESSAGE_LIST: "messages", JobKind.MESSAGE_GET: "data",
                       JobKind.MESSAGE_READ: "message"}

    kind = models.CharField(max_length=32, choices=JobKind.choices)
    profile = models.ForeignKey(Profile, null=True, on_delete=models.SET_NULL, related_name="jobs")
    profile_name = models.CharField(max_length=100)
    target = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    # Where the request came from, copied into the entries the worker writes for this job.
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=32, blank=True)

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When it entered the queue: at creation, or when its approval let it go.
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    err_code = models.IntegerField(null=True, blank=True)
    error_field = models.CharField(max_length=64, blank=True)
    # How far a job of many parts has got while it runs: {"done": n, "total": m}.
    progress = models.JSONField(null=True, blank=True)
    # Someone asked a job of many parts to stop: it stops where stopping is safe.
    cancel_requested = models.BooleanField(default=False)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def is_overdue(self, now: datetime) -> bool:
        """The rule of JobQuerySet.overdue, for one job in hand."""
        if self.status == JobStatus.RUNNING:
            return self.deadline is not None and self.deadline < now
        return (self.status == JobStatus.QUEUED
                and self.queued_at < now - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT))

    def requeue(self, reason: str) -> bool:
        """Back in the queue for another attempt after a retryable failure; meanwhile the
        profile's next job may run."""
        if not Job.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.QUEUED, error=f"attempt {self.attempts} failed: {reason}",
                deadline=None):
            return False
        Job.objects.hand_on(self.profile_id, besides=self.pk)
        return True

    def note_progress(self, done: int, total: int) -> bool:
        """How far a running job of many parts has got, for its card. Each step forward moves
        the reaper's deadline too: a long apply is alive while it progresses."""
        self.progress = {"done": done, "total": total}
        return bool(Job.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(
            progress=self.progress,
            deadline=timezone.now() + timedelta(seconds=settings.JOB_RUN_TIMEOUT)))

    def cancel(self, context: Acting) -> bool:
        """Someone asked the job to stop (a kind that stops_midway; views ask streams.policy who
        may): audited, then a queued job ends at once without running and a running one stops
        where its kind safely can, once its worker sees `cancel_requested`. False when the job
        had ended, cannot stop, or was asked already."""
        with transaction.atomic():
            Profile.objects.lock(self.profile_id, no_key=True)  # before the head, as _end does
            asked = Job.objects.filter(
                pk=self.pk, kind__in=[kind for kind in JobKind if kind.stops_midway],
                status__in=(JobStatus.QUEUED, JobStatus.RUNNING), cancel_requested=False,
            ).update(cancel_requested=True)
            if not asked:
                return False
            self.cancel_requested = True
            done = f" ({self.progress['done']:,} of {self.progress['total']:,} done)" if (
                self.progress) else ""
            AuditEvent.objects.record(
                "job.cancel_requested", context, target_type=JobKind(self.kind).target_type,
                target_name=self.target, profile=self.profile, job=self, outcome="requested",
                message=f"{self.get_kind_display()}: asked to stop{done}")
            # A worker that claimed it meanwhile finds the flag instead.
            self.fail(Stopped(
                f"stopped before attempt {self.attempts + 1}: what the earlier ones did stands"
                if self.attempts else "stopped before it started: nothing was changed"),
                expected=JobStatus.QUEUED)
        return True

    def cancel_asked(self) -> bool:
        """Whether someone asked the running job to stop (read afresh: they asked elsewhere)."""
        return Job.objects.filter(pk=self.pk, cancel_requested=True).exists()

    def enqueue(self) -> None:
        """Hand the job to a worker; fail it (in place too) when the queue is unreachable."""
        try:
            current_app.send_task(self.TASK, args=[self.pk])
        except OperationalError as exc:
            log.warning("job %s not enqueued: %s", self.pk, exc)
            self.fail(OperationError("task queue unreachable: the job could not be handed to a "
                                     "worker (is Redis running?)"), expected=JobStatus.QUEUED)

    def wait(self) -> Job:
        """The job as it is once it ended, or after JOB_WAIT seconds, whichever comes first."""
        self.refresh_from_db()
        if not self.waits_for_worker or settings.JOB_WAIT == 0:  # BLPOP's 0 waits forever
            return self
        wakeup.wait_for(self.pk, settings.JOB_WAIT)
        self.refresh_from_db()
        return self

    def finish(self, result: dict[str, Any], kind: Recording) -> None:
        """The broker did what the job asked: the outcome, what its kind records of the answer
        and the audit entries, at once."""
        try:
            self._end(JobStatus.SUCCEEDED, JobStatus.RUNNING, kind=kind, result=result)
        except Exception as exc:
            # The broker did its part: say so, rather than leave the job to look like a dead
            # worker.
            log.exception("job %s (%s): recording the outcome failed", self.pk, self.kind)
            self._end(JobStatus.FAILED, JobStatus.RUNNING, error=OperationError(
                f"{kind.done}; recording the outcome failed: {type(exc).__name__}: "
                f"{str(exc)[:200]}"))

    def fail(self, error: OperationError, *, kind: Recording | None = None,
             expected: str = JobStatus.RUNNING) -> None:
        """Without a kind (a job that never reached the broker: no worker, Redis down) only the
        outcome and the job's closing entry are written."""
        self._end(JobStatus.FAILED, expected, kind=kind, error=error)

    def _end(
        self, status: str, expected: str, *, kind: Recording | None = None,
        result: dict[str, Any] | None = None, error: OperationError | None = None,
    ) -> None:
        """Nothing happens when the job is no longer `expected`: the reaper or a duplicate task
        ended it meanwhile."""
        with transaction.atomic():
            # The profile's next claim waits for this end to commit, so the next job never
            # starts before this one finished (claim). No key lock: the stream rows stored
            # below, and by the listener meanwhile, only refer to the profile.
            Profile.objects.lock(self.profile_id, no_key=True)
            if not self.close(
                expected, status=status, finished_at=timezone.now(), params=self.public_params,
                result=kind.summary(result) if kind and result is not None else result,
                error=error.message if error else "",
                err_code=error.err_code if error else None,
                error_field=error.field if error else "",
            ):
                return
            transaction.on_commit(partial(wakeup.notify, self.pk))  # a request may be waiting
            transaction.on_commit(partial(Job.objects.hand_on, self.profile_id))  # next in line
            took = (timezone.now() - self.started_at).total_seconds() if self.started_at else None
            metrics.JOBS.labels(self.kind, status).inc()
            if took is not None:
                metrics.RUN_TIME.labels(self.kind).observe(max(0.0, took))
            if error and kind is not None and not isinstance(error, Stopped):  # broker refused
                metrics.BROKER_ERRORS.labels(str(error.err_code or 0)).inc()
            log.info("job %s (%s) on %s %s", self.pk, self.kind, self.profile_name, status,
                     extra={"job": self.pk, "kind": self.kind, "profile": self.profile_name,
                            "outcome": status,
                            "duration_ms": round(took * 1000, 1) if took is not None else None})
            recorded = kind is not None and self.profile is not None  # a deleted profile: none
            entries = kind.record(self, result, error) if recorded else []
            if JobKind(self.kind).reads:  # what it found may be a change (made outside)
                AuditEvent.objects.append(entries)
                return
            if error:
                message = error.message
            elif kind and result is not None:
                message = kind.describe(self, result)
            else:
                message = self.get_kind_display()
            approver = Approval.objects.filter(job=self, status=ApprovalStatus.APPROVED
                                               ).values_list("decided_by_name", flat=True).first()
            if approver:  # the second pair of eyes is on the job's own entries too
                message = f"{message} (approved by {approver})"
            AuditEvent.objects.append([*entries, AuditEvent.objects.entry(
                "job.finished", self, target_type=JobKind(self.kind).target_type,
                target_name=self.target, profile=self.profile, job=self, outcome=status,
                message=message,
            )])

    def stalled(self) -> str:
        """Why an unfinished job will be failed by the reaper, or "" while it is on time. Reads
        only: pages show it at once, the reaper writes it."""
        now = timezone.now()
        if not self.is_overdue(now):
            return ""
        return (self.WORKER_STOPPED if self.status == JobStatus.RUNNING
                else self._why_not_picked_up(now))

    def _why_not_picked_up(self, now: datetime) -> str:
        waited = f"{settings.JOB_QUEUE_TIMEOUT:g} s"
        if Job.objects.filter(profile_id=self.profile_id, status=JobStatus.RUNNING).exists():
            return (f"it waited {waited} behind another job on this connection, which is still "
                    "running (a connection runs one job at a time)")
        last_seen = WorkerHeartbeat.objects.workers().order_by("-seen_at").values_list(
            "seen_at", flat=True).first()
        if last_seen and (now - last_seen).total_seconds() < 3 * settings.WORKER_HEARTBEAT_INTERVAL:
            return (f"no worker slot came free within {waited}: the workers were busy with "
                    "other jobs")
        since = (f" (the last one was seen {int((now - last_seen).total_seconds())} s ago)"
                 if last_seen else "")
        return f"no worker picked the job up within {waited}: no worker is running{since}"

    def close(self, expected: str, **outcome: Any) -> bool:
        """Write the outcome (status, finished_at, result, error…) if the job is still
        `expected` (the reaper or a duplicate task may have ended it meanwhile), on the row and
        on this object. A profile deleted while the job ran is let go of here."""
        ours = Job.objects.filter(pk=self.pk, status=expected)
        if not ours.filter(profile_id=self.profile_id).update(**outcome):
            if not ours.update(**outcome):
                return False
            self.profile = None
        for name, value in outcome.items():
            setattr(self, name, value)
        return True

    @property
    def held_seqs(self) -> list[int]:
        """The sequences of the messages its result holds."""
        if self.kind == JobKind.MESSAGE_LIST:
            return [message["seq"] for message in self.result.get("messages", [])]
        return [self.result["seq"]] if self.MESSAGE_RESULTS[self.kind] in self.result else []

    def forget_messages(self) -> bool:
        """Drop the messages its result holds; the rest (the stream's range, a download's
        sequence and size) stays."""
        if self.result is None or self.result.pop(self.MESSAGE_RESULTS[self.kind], None) is None:
            return False
        return bool(Job.objects.filter(pk=self.pk).update(result=self.result))

    @property
    def names_a_stream(self) -> bool:
        """Whether its target is a stream (else a profile)."""
        return JobKind(self.kind).target_type == "stream"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def stoppable(self) -> bool:
        """Whether its card offers Stop: queued or running, of a kind that stops midway, and
        not asked to already."""
        return (JobKind(self.kind).stops_midway and self.waits_for_worker
                and not self.cancel_requested)

    @property
    def estimate(self) -> str:
        """How long a running job of many parts still needs at its pace so far, in words
        ("about 40 s left", "estimating…" until it has a pace)."""
        if not self.progress or self.started_at is None:
            return time_left(None)
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return time_left(seconds_left(self.progress["done"], self.progress["total"], elapsed))

    @property
    def waits_for_worker(self) -> bool:
        """Queued or running: a worker will end it, and pages poll for that. A held job waits
        for a person instead (streams.approvals)."""
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def action(self) -> str:
        """What this job does, as streams.policy names it: an apply with deletions confirmed
        deletes streams, which needs the deleting role."""
        if self.kind == JobKind.STREAM_APPLY and self.params.get("deletes_confirmed"):
            return "plan.delete"
        return JobKind(self.kind).action

    @property
    def public_params(self) -> dict[str, Any]:
        return {key: value for key, value in self.params.items()
                if key not in self.PRIVATE_PARAMS}

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

class WorkerHeartbeatQuerySet(models.QuerySet["WorkerHeartbeat"]):
    def note_alive(self, name: str) -> None:
        """A worker says it is alive (on a timer of its main process), so a job nobody picked
        up can say whether any worker runs; the listener says so as it reads its targets.
        Each names the Redis it serves (WorkerHeartbeat.serving)."""
        self.update_or_create(name=name[:255], defaults={
            "seen_at": timezone.now(), "broker": WorkerHeartbeat.serving()})

    def of_this_deployment(self) -> WorkerHeartbeatQuerySet:
        """Those of the processes on the Redis this process uses: /healthz asks about its
        own deployment's, not any worker another Redis feeds."""
        return self.filter(broker=WorkerHeartbeat.serving())

    def reap(self, name: str) -> int:
        """The reaper's round on worker `name` (Job.objects.reap_overdue), noted for /healthz."""
        reaped = Job.objects.reap_overdue()
        self.filter(name=name[:255]).update(reaped_at=timezone.now())
        return reaped

    def workers(self) -> WorkerHeartbeatQuerySet:
        return self.exclude(name__in=(WorkerHeartbeat.LISTENER, WorkerHeartbeat.SCHEDULER))


class WorkerHeartbeat(models.Model):
    """When each worker (by its Celery node name), and the advisory listener, last said it was
    alive, and when each worker's reaper last ran: so a job nobody picked up can be told apart
    (no worker running, or every worker busy), and /healthz can say what is down."""

    LISTENER = "advisory listener"
    SCHEDULER = "scheduler"

    name = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()
    reaped_at = models.DateTimeField(null=True, blank=True)
    # A fingerprint of the Redis it serves (not its address, which may hold a password).
    broker = models.CharField(max_length=16, blank=True)

    @staticmethod
    def serving() -> str:
        return hashlib.sha256(current_app.conf.broker_url.encode()).hexdigest()[:16]

    objects = WorkerHeartbeatQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class Approval(models.Model):
    """A held job's way to run: on a profile that requires approval a change waits, as a job
    whose kind and params say exactly what will run, for another member to approve it
    (streams.approvals holds the flow and its audit entries)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="approval")
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices,
                              default=ApprovalStatus.PENDING, db_index=True)
    expires_at = models.DateTimeField()
    # The target stream's config as the requester saw it, or None: an approver is shown what
    # changed since, and never lets a change run blind.
    sighting = models.JSONField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    decided_by_name = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-job__created_at"]

    def __str__(self) -> str:
        return f"approval of job {self.job_id}: {self.status}"
