from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from celery import current_app
from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone
from kombu.exceptions import OperationalError

from streams import definitions, seal, sql, system_streams
from streams.crypto import EncryptedTextField
from streams.definitions import StreamSync
from streams.errors import OperationError
from streams.jobs import wakeup
from streams.uint64 import UInt64Field

log = logging.getLogger(__name__)


class BrokerKind(models.TextChoices):
    NATS = "nats", "NATS"
    MEMPHIS = "memphis", "Memphis"


class AuthMethod(models.TextChoices):
    NONE = "none", "None"
    USER_PASSWORD = "user_password", "User and password"
    TOKEN = "token", "Token"
    MEMPHIS_TOKEN = "memphis_token", "Memphis connection token"
    MEMPHIS_PASSWORD = "memphis_password", "Memphis application user and password"
    NKEY = "nkey", "NKey seed"
    CREDS = "creds", "Credentials file"


class ProfileQuerySet(models.QuerySet["Profile"]):
    def note_version(self, profile: Profile | None, version: str | None) -> None:
        """Jobs see the server's version: keep the forms' version gates current."""
        if version and profile is not None and profile.last_server_version != version:
            self.filter(pk=profile.pk).update(last_server_version=version)


class Profile(models.Model):
    """A saved connection to a NATS server or a Memphis broker."""

    SECRET_FIELDS = ("password", "token", "nkey_seed", "creds", "tls_client_key")

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    broker_kind = models.CharField(
        "broker kind", max_length=16, choices=BrokerKind.choices, default=BrokerKind.NATS
    )
    servers = models.TextField(help_text="One URL per line: nats://host:4222 or tls://host:4222")
    connect_timeout = models.FloatField("connect timeout (s)", default=2.0)
    js_domain = models.CharField("JetStream domain", max_length=100, blank=True)
    js_api_prefix = models.CharField("JetStream API prefix", max_length=200, blank=True)

    auth_method = models.CharField(
        "authentication", max_length=32, choices=AuthMethod.choices, default=AuthMethod.NONE
    )
    username = models.CharField("user", max_length=200, blank=True)
    password = EncryptedTextField(blank=True)
    token = EncryptedTextField(blank=True)
    nkey_seed = EncryptedTextField("NKey seed", blank=True)
    creds = EncryptedTextField("credentials", blank=True)

    tls_ca = models.TextField("CA bundle (PEM)", blank=True)
    tls_client_cert = models.TextField("client certificate (PEM)", blank=True)
    tls_client_key = EncryptedTextField("client key (PEM)", blank=True)
    tls_server_name = models.CharField("TLS server name", max_length=255, blank=True)

    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_server_version = models.CharField(max_length=32, blank=True)
    last_check_error = models.TextField(blank=True)

    record_outside = models.BooleanField(
        "Record changes made outside", default=False,
        help_text="Streams created, edited or deleted on this broker by anyone but this "
                  "dashboard go into the audit log, with who did it and how the stream now "
                  "differs from its definition here (the advisory listener, ./dev watch, "
                  "must run).")
    keep_advisories = models.BooleanField(
        "Keep advisories in a capture stream while the listener is down", default=False)
    # What the last capture-stream job found (streams.jobs.kinds.advisories).
    last_capture_at = models.DateTimeField(null=True, blank=True)
    last_capture_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    last_capture_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def server_list(self) -> list[str]:
        return [line.strip() for line in self.servers.splitlines() if line.strip()]

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_client_cert) or any(
            url.startswith("tls://") for url in self.server_list
        )

    @property
    def keeps_advisories(self) -> bool:
        """Whether the capture stream should exist on the broker: only while recording."""
        return self.record_outside and self.keep_advisories


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

    @property
    def target_type(self) -> str:
        """What a job of this kind acts on, as its audit entries name it."""
        return ("profile" if self in {JobKind.TEST_CONNECTION, JobKind.STREAM_LIST,
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
                        JobKind.MESSAGE_GET, JobKind.MESSAGE_READ}

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


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ProfileBusy(Exception):
    """Another job of the same profile is running: this one waits its turn (see claim)."""


class Recording(Protocol):
    """What a job's kind says about its end (streams.jobs.kinds.Kind: the worker's; the web
    process never imports those)."""

    done: str

    def record(self, job: Job, result: dict[str, Any] | None,
               error: OperationError | None) -> list[AuditEvent]: ...

    def summary(self, result: dict[str, Any]) -> dict[str, Any]: ...

    def describe(self, job: Job, result: dict[str, Any]) -> str: ...


class JobQuerySet(models.QuerySet["Job"]):
    def submit(
        self, kind: str, profile: Profile, context: Acting, *, target: str = "",
        params: dict[str, Any] | None = None, audited: dict[str, Any] | None = None,
    ) -> Job:
        """The one way a job starts: its row and, unless it only reads, the entry saying who
        asked for it, in one transaction, handed to a worker once both are committed.
        `audited`: what the entry records of the params when not their public part (which
        leaves a message's body and headers out of the log)."""
        with transaction.atomic():
            job = self.create(
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
            if not JobKind(kind).reads:  # a read is on the Job row alone
                AuditEvent.objects.record(
                    "job.requested", context, target_type=JobKind(kind).target_type,
                    target_name=job.target, profile=profile, job=job, outcome="requested",
                    after=(job.public_params if audited is None else audited) or None,
                    message=job.get_kind_display(),
                )
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
        ProfileBusy when it must wait its turn."""
        now = timezone.now()
        running = self.filter(profile_id=OuterRef("profile_id"), status=JobStatus.RUNNING)
        with transaction.atomic(using=self.db):
            if connections[self.db].features.has_select_for_update:
                # PostgreSQL: one profile's claims take turns on its row, so that two of them
                # never both see no running job. (SQLite's IMMEDIATE transactions take turns.)
                list(Profile.objects.select_for_update(of=("self",)).filter(jobs=job_id)
                     .only("pk"))
            claimed = self.filter(pk=job_id, status=JobStatus.QUEUED).exclude(
                Exists(running)).update(
                status=JobStatus.RUNNING,
                started_at=now,
                deadline=now + timedelta(seconds=settings.JOB_RUN_TIMEOUT),
                attempts=F("attempts") + 1,
            )
        if claimed:
            return self.select_related("profile", "actor").get(pk=job_id)
        if self.filter(pk=job_id, status=JobStatus.QUEUED).exists():
            raise ProfileBusy
        return None

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
                jobs.filter(status=JobStatus.QUEUED, created_at__lt=now - timedelta(
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
                and self.created_at < now - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT))

    def requeue(self, reason: str) -> bool:
        """Back in the queue for another attempt after a retryable failure."""
        return bool(Job.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.QUEUED, error=f"attempt {self.attempts} failed: {reason}",
            deadline=None))

    def note_progress(self, done: int, total: int) -> bool:
        """How far a running job of many parts has got, for its card. Each step forward moves
        the reaper's deadline too: a long apply is alive while it progresses."""
        self.progress = {"done": done, "total": total}
        return bool(Job.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(
            progress=self.progress,
            deadline=timezone.now() + timedelta(seconds=settings.JOB_RUN_TIMEOUT)))

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
        if self.is_finished or settings.JOB_WAIT == 0:  # BLPOP's timeout 0 would wait forever
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
            if not self.close(
                expected, status=status, finished_at=timezone.now(), params=self.public_params,
                result=kind.summary(result) if kind and result is not None else result,
                error=error.message if error else "",
                err_code=error.err_code if error else None,
                error_field=error.field if error else "",
            ):
                return
            transaction.on_commit(partial(wakeup.notify, self.pk))  # a request may be waiting
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
        last_seen = WorkerHeartbeat.objects.order_by("-seen_at").values_list(
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
    def public_params(self) -> dict[str, Any]:
        return {key: value for key, value in self.params.items()
                if key not in self.PRIVATE_PARAMS}

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit entry through the ORM."""


class Acting(Protocol):
    """Who acts and from where, as an entry copies it: a streams.audit.Context, or a Job (whoever
    requested it, for the entries its end writes)."""

    actor: Any
    ip: str | None
    user_agent: str
    request_id: str


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    """The one write path of the audit log: entry() makes an entry, append() dates, numbers and
    chains entries onto the log (streams.audit.chain says how the chain and its head work).
    Entries are append-only: the ORM refuses to change or remove them in bulk too."""

    def entry(
        self,
        action: str,
        context: Acting | None,
        *,
        target_type: str = "",
        target_name: str = "",
        profile: Profile | None = None,
        job: Job | None = None,
        outcome: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        message: str = "",
        actor_name: str = "",
    ) -> AuditEvent:
        """An entry not yet in the log: append() dates it and chains it. No context: nobody's
        (the log's own entries)."""
        actor = context.actor if context is not None else None
        ip = context.ip if context is not None else None
        return self.model(
            at=None,
            actor=actor,
            actor_name=(actor.get_username() if actor is not None else actor_name)[:150],
            ip=self.model._meta.get_field("ip").get_prep_value(ip) if ip else None,
            user_agent=context.user_agent[:300] if context is not None else "",
            request_id=context.request_id[:32] if context is not None else "",
            action=action,
            target_type=target_type,
            target_name=target_name[:255],
            profile=profile,
            # A job's entries name its profile even after the profile was deleted.
            profile_name=profile.name if profile is not None else job.profile_name if job else "",
            job=job,
            outcome=outcome,
            before=before,
            after=after,
            changes=changes,
            message=message,
        )

    def record(self, action: str, context: Acting | None, **fields: Any) -> AuditEvent:
        """Write one entry now (the fields are entry()'s)."""
        event = self.entry(action, context, **fields)
        self.append([event])
        return event

    def append(self, events: list[AuditEvent]) -> None:
        """Chain entries onto the log with one INSERT. Entries from entry() are dated now;
        entries that carry their own time (history brought over from elsewhere, benchmark
        data) must not be earlier than the one before them. Inside a caller's transaction the
        entries commit or roll back with it; a savepoint is taken only where append() may
        refuse (entries with their own time), so that a refusal leaves the caller's
        transaction usable."""
        if not events:
            return
        with transaction.atomic(savepoint=any(event.at is not None for event in events)):
            head = self.lock_head()
            self._link(head, events)
            self._insert_entries(events)
            self._write_head(head)

    def _link(self, head: AuditChainHead, events: list[AuditEvent]) -> None:
        """Date, number and hash the entries after the head, and move the head past them."""
        now = timezone.now()
        for event in events:
            if event.at is None:
                # Never earlier than the entry before, even from a host whose clock lags: time
                # order is chain order, which lets date filters become seq ranges (audit views).
                event.at = max(now, head.at) if head.at else now
            elif head.at and event.at < head.at:
                raise ValueError(f"entry dated {event.at} is earlier than the one before it")
            event.seq, event.prev_hash = head.seq + 1, head.hash
            event.before, event.after = seal.as_stored(event.before), seal.as_stored(event.after)
            event.changes = seal.as_stored(event.changes)
            event.hash = seal.entry_hash(seal.chained_content(event), head.hash)
            head.seq, head.hash, head.at = event.seq, event.hash, event.at

    def _write_head(self, head: AuditChainHead) -> None:
        """Store the moved head with its new MAC: one UPDATE, as every append does this."""
        head.mac = seal.head_mac(head.seq, head.hash, head.at)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {AuditChainHead._meta.db_table} SET seq = %s, hash = %s, at = %s, "
                "mac = %s WHERE id = 1",
                [head.seq, head.hash, connection.ops.adapt_datetimefield_value(head.at),
                 head.mac],
            )

    def _insert_entries(self, events: list[AuditEvent]) -> None:
        """One INSERT for all the entries, in plain SQL: every job writes entries twice, and
        the ORM's preparation of a 20-column row costs several times the database's work."""
        names = [field.name for field in self.model._meta.concrete_fields
                 if not field.primary_key]
        statement = sql.insert(self.model, names, rows=len(events), returning_pk=True)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, [value for event in events
                                           for value in statement.params(vars(event))])
            for event, (pk,) in zip(events, cursor.fetchall(), strict=True):
                event.pk = pk
                event._state.adding, event._state.db = False, connection.alias

    def lock_head(self) -> AuditChainHead:
        """The chain head, locked until the transaction ends: concurrent writers queue here (a
        row lock on PostgreSQL; on SQLite the IMMEDIATE transaction already holds the write
        lock).

        A head that is missing or fails its MAC is what someone who cut entries from the end
        would leave: rebuilding it quietly and sealing it with the next append would hide the
        cut. The writer still continues, so the app keeps working, but first adds an entry
        saying so, which integrity.verify() reports."""
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT seq, hash, at, mac FROM {AuditChainHead._meta.db_table} "
                           f"WHERE id = 1{lock}")
            row = cursor.fetchone()
        if row is not None:
            seq, last_hash, at, mac = row
            # SQLite hands back the stored UTC time without its zone.
            if at is not None and timezone.is_naive(at):
                at = at.replace(tzinfo=UTC)
            head = AuditChainHead(pk=1, seq=seq, hash=last_hash, at=at, mac=mac)
            if seal.matches(seal.head_mac(seq, last_hash, at), mac):
                return head
            problem = "the chain head did not match its MAC (altered, or AUDIT_HMAC_KEY changed)"
        else:
            # Continue from what is there (the walk in integrity.verify() judges it).
            newest = self.model.objects.order_by("-seq").values_list("seq", "hash", "at").first()
            checkpoint = AuditCheckpoint.objects.order_by("-seq").values_list("seq",
                                                                              "hash").first()
            seq, last_hash, at = newest or (*(checkpoint or (0, seal.GENESIS)), None)
            head, created = AuditChainHead.objects.select_for_update().get_or_create(
                pk=1, defaults={"seq": seq, "hash": last_hash, "at": at,
                                "mac": seal.head_mac(seq, last_hash, at)},
            )
            if not created:  # another writer found it missing a moment ago and recorded that
                return head
            problem = "the chain head was missing (the log was wiped or its head removed)"
        marker = self.entry(self.model.HEAD_REBUILT, None, target_type="audit", outcome="failed",
                            actor_name="memphisadmin",
                            before={"seq": head.seq, "hash": head.hash},
                            message=f"{problem}; the chain continued from #{head.seq}")
        self._link(head, [marker])
        self._insert_entries([marker])
        self._write_head(head)
        return head

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted (use manage.py prune_audit)")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries cannot be changed")


class AuditEvent(models.Model):
    """Append-only record of who did what, when, to which target, and how it ended. Names are
    copied, not only referenced, so entries outlive what they describe: the foreign keys are
    plain ids without a database constraint (deleting a user, profile or job must not rewrite
    an entry). `seq` and `hash` chain the entries together (see streams.audit)."""

    # The action of the entry a writer adds when it found the head missing or unsealed.
    HEAD_REBUILT = "audit.head_rebuilt"

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING,
                              db_constraint=False)
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=32, blank=True)

    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.DO_NOTHING,
                                db_constraint=False)
    profile_name = models.CharField(max_length=100, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False)
    outcome = models.CharField(max_length=16, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    changes = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)

    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        # Every review filter is an equality on one of these plus "newest first": each index
        # ends in seq so a page is one index range scan, however large the table.
        indexes = [
            models.Index(fields=["at", "seq"], name="audit_at_seq"),
            models.Index(fields=["actor_name", "seq"], name="audit_actor_seq"),
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["target_type", "target_name", "seq"], name="audit_target_seq"),
            models.Index(fields=["profile_name", "seq"], name="audit_profile_name_seq"),
            models.Index(fields=["profile", "seq"], name="audit_profile_seq"),
            models.Index(fields=["outcome", "seq"], name="audit_outcome_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_name} by {self.actor_name or 'anonymous'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted (use manage.py prune_audit)")


class AuditChainHead(models.Model):
    """The newest entry's seq, hash and time, in a single row that always exists (migrate and
    flush create it at seq 0). Writers lock it to take turns, so two entries never get the same
    predecessor; verification compares it with the newest entry to notice entries removed from
    the end. `mac` seals it with the chain's key, and database triggers refuse to move it back
    or delete it, so the head cannot be rewound to match a shortened log."""

    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    at = models.DateTimeField(null=True)
    mac = models.CharField(max_length=64)


class AuditCheckpoint(models.Model):
    """Left behind by prune_audit: the seq and hash of the last entry it removed, signed, so the
    chain can be verified from the first remaining entry. Append-only like the entries."""

    seq = models.PositiveBigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    pruned_before = models.DateTimeField()
    removed = models.PositiveBigIntegerField()
    at = models.DateTimeField(default=timezone.now)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"


class StreamStatus(models.TextChoices):
    OK = "ok", "ok"
    MISSING = "missing", "missing"  # the cluster knows it, but no replica answered
    OFFLINE = "offline", "offline"
    GONE = "gone", "gone"  # a job found it deleted outside; the next listing drops it


class WorkerHeartbeatQuerySet(models.QuerySet["WorkerHeartbeat"]):
    def note_alive(self, name: str) -> None:
        """A worker says it is alive (on a timer of its main process), so a job nobody picked
        up can say whether any worker runs."""
        self.update_or_create(name=name[:255], defaults={"seen_at": timezone.now()})


class WorkerHeartbeat(models.Model):
    """When each worker last said it was alive, so a job nobody picked up can be told apart:
    no worker running, or every worker busy."""

    name = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    objects = WorkerHeartbeatQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name


Config = dict[str, Any]


def _timestamp(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):  # Go's zero time: no message yet
        return None
    return datetime.fromisoformat(text)


class StreamQuerySet(models.QuerySet["Stream"]):
    """Storing what the broker said about streams, for the jobs and the advisory listener
    (streams.outside) alike: thousands of rows at once, in plain SQL, with each stream's state
    against the team's definition."""

    ROW_FIELDS = [
        "status", "status_reason", "system_kind", "subjects", "subjects_text", "storage",
        "replicas", "retention", "messages", "bytes", "consumers", "first_seq", "first_ts",
        "last_seq", "last_ts", "info", "read_at", "sync", "drift",
    ]

    def row(self, profile_id: int, info: dict[str, Any], read_at: datetime,
            status: str = StreamStatus.OK, reason: str = "", *,
            definition: Config | None = None) -> dict[str, Any]:
        """A Stream row's column values (plain values: thousands are stored at once), with its
        state against its definition (None: unmanaged)."""
        config, state = info.get("config") or {}, info.get("state")
        sync, drift = definitions.state(definition, config)
        subjects = config.get("subjects") or []
        if state is None:  # an unreachable stream: its config is known, its state is not
            state = dict.fromkeys(("messages", "bytes", "consumer_count", "first_seq",
                                   "last_seq"))
        return {
            "profile_id": profile_id, "name": config["name"], "status": status,
            "status_reason": reason[:255],
            "system_kind": system_streams.system_kind(config["name"]),
            "subjects": subjects, "subjects_text": " ".join(subjects),
            "storage": config.get("storage", ""), "replicas": config.get("num_replicas") or 1,
            "retention": config.get("retention", ""), "messages": state.get("messages", 0),
            "bytes": state.get("bytes", 0), "consumers": state.get("consumer_count", 0),
            "first_seq": state.get("first_seq", 0), "first_ts": _timestamp(state.get("first_ts")),
            "last_seq": state.get("last_seq", 0), "last_ts": _timestamp(state.get("last_ts")),
            "info": info, "read_at": read_at, "sync": sync, "drift": drift,
        }

    def unreadable_row(self, profile_id: int, name: str, status: str, reason: str,
                       read_at: datetime,
                       sync: StreamSync = StreamSync.UNMANAGED) -> dict[str, Any]:
        """A stream the cluster names but cannot describe, or one known by its definition
        only. A defined one that cannot be read is not known to be in sync: it counts as
        drifted."""
        return {**self.row(profile_id, {"config": {"name": name}}, read_at, status, reason),
                "storage": "", "replicas": None, "retention": "", "info": None, "sync": sync}

    def missing_row(self, profile_id: int, name: str, read_at: datetime) -> dict[str, Any]:
        """A stream the team defined that is not on the broker: deleted outside the
        dashboard."""
        return self.unreadable_row(profile_id, name, StreamStatus.GONE,
                                   "not on the server: deleted outside the dashboard", read_at,
                                   StreamSync.MISSING)

    def store(self, rows: list[dict[str, Any]]) -> None:
        """Upsert Stream rows with one statement per batch: the ORM's bulk_create spends
        ~0.4 ms a row preparing values, and a 10,000-stream listing must be stored in well
        under a second."""
        statement = sql.insert(self.model, ["profile", "name", *self.ROW_FIELDS],
                               upsert_on=["profile", "name"])
        with transaction.atomic(), connection.cursor() as cursor:  # one commit, not one a row
            for start in range(0, len(rows), 1000):
                cursor.executemany(statement.sql, [statement.params(row)
                                                   for row in rows[start:start + 1000]])

    def store_one(self, profile_id: int, name: str, info: dict[str, Any]) -> dict[str, Any]:
        """The row of the one stream a job read, created or changed."""
        definition = (StreamDefinition.objects.filter(profile_id=profile_id, name=name)
                      .values_list("config", flat=True).first())
        row = self.row(profile_id, info, timezone.now(), definition=definition)
        self.store([row])
        return row

    def sync_states(self, profile_id: int,
                    names: list[str] | None = None) -> dict[str, tuple[str, Any]]:
        """Each stream's (sync, drift) as stored, before a read replaces them."""
        streams = self.filter(profile_id=profile_id)
        if names is not None:
            streams = streams.filter(name__in=names)
        return {name: (sync, drift) for name, sync, drift
                in streams.values_list("name", "sync", "drift")}

    def mark_gone(self, profile_id: int, name: str, reason: str) -> None:
        """The row says the stream is gone, and why: missing, when it is defined here, or until
        the next listing drops it."""
        is_defined = Exists(StreamDefinition.objects.filter(profile_id=OuterRef("profile_id"),
                                                            name=OuterRef("name")))
        self.filter(profile_id=profile_id, name=name).update(
            status=StreamStatus.GONE, status_reason=reason[:255],
            sync=Case(When(is_defined, then=Value(StreamSync.MISSING)),
                      default=Value(StreamSync.UNMANAGED)), drift=None)


class Stream(models.Model):
    """What the broker last said about one stream, so pages render from the database. Rows are
    replaced by each listing and by each job that reads or changes the stream."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="streams")
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=StreamStatus.choices,
                              default=StreamStatus.OK)
    status_reason = models.CharField(max_length=255, blank=True)
    system_kind = models.CharField(max_length=16, blank=True)  # "" for the user's own streams
    subjects = models.JSONField(default=list, blank=True)
    subjects_text = models.TextField(blank=True)  # space-joined, for filtering
    storage = models.CharField(max_length=16, blank=True)
    replicas = models.PositiveSmallIntegerField(null=True)
    retention = models.CharField(max_length=16, blank=True)
    messages = UInt64Field(null=True)
    bytes = UInt64Field(null=True)
    consumers = UInt64Field(null=True)
    first_seq = UInt64Field(null=True)
    first_ts = models.DateTimeField(null=True)
    last_seq = UInt64Field(null=True)
    last_ts = models.DateTimeField(null=True)
    info = models.JSONField(null=True, blank=True)  # the server's STREAM.INFO JSON as read
    read_at = models.DateTimeField()
    sync = models.CharField(max_length=16, choices=StreamSync.choices,
                            default=StreamSync.UNMANAGED)
    drift = models.JSONField(null=True, blank=True)  # {api_key: [defined, live]} when drifted

    objects = StreamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="stream_unique_per_profile")]

    def __str__(self) -> str:
        return self.name

    @property
    def config(self) -> dict[str, Any]:
        return (self.info or {}).get("config") or {}

    @property
    def system_label(self) -> str:
        return system_streams.SYSTEM_LABELS.get(self.system_kind, "")


class StreamDefinitionQuerySet(models.QuerySet["StreamDefinition"]):
    def configs(self, profile_id: int) -> dict[str, Config]:
        """A profile's definitions by stream name."""
        return dict(self.filter(profile_id=profile_id).values_list("name", "config"))

    def store(self, job: Job, configs: dict[str, Config]) -> None:
        """These streams' definitions become these configs (as the server answered them to
        `job`), in one upsert per thousand."""
        statement = sql.insert(self.model,
                               ["profile", "name", "config", "job", "updated_by", "updated_at"],
                               upsert_on=["profile", "name"])
        now = timezone.now()
        params = [statement.params({
            "profile_id": job.profile_id, "name": name, "config": config, "job_id": job.pk,
            "updated_by": job.actor_name, "updated_at": now,
        }) for name, config in configs.items()]
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(params), 1000):
                cursor.executemany(statement.sql, params[start:start + 1000])

    def forget(self, profile_id: int, name: str) -> tuple[int, dict[str, int]]:
        return self.filter(profile_id=profile_id, name=name).delete()


class StreamDefinition(models.Model):
    """The team's definition of a stream: the config the server answered with when the
    dashboard last created, changed or adopted it (streams.definitions compares it with the
    live one)."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE,
                                related_name="stream_definitions")
    name = models.CharField(max_length=255)
    config = models.JSONField()
    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StreamDefinitionQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="stream_definition_unique_per_profile")]

    def __str__(self) -> str:
        return self.name


class ConsumerQuerySet(models.QuerySet["Consumer"]):
    """Storing what the broker said about a stream's consumers."""

    ROW_FIELDS = [
        "missing", "durable", "push", "filter_subjects", "ack_policy", "delivered_seq",
        "ack_floor_seq", "pending", "ack_pending", "redelivered", "waiting", "paused",
        "last_active", "info", "read_at",
    ]

    def row(self, profile_id: int, stream: str, info: dict[str, Any],
            read_at: datetime) -> dict[str, Any]:
        config = info.get("config") or {}
        delivered, ack_floor = info.get("delivered") or {}, info.get("ack_floor") or {}
        filters = config.get("filter_subjects") or (
            [config["filter_subject"]] if config.get("filter_subject") else [])
        return {
            "profile_id": profile_id, "stream_name": stream, "name": info["name"],
            "missing": False, "durable": bool(config.get("durable_name")),
            "push": bool(config.get("deliver_subject")), "filter_subjects": filters,
            "ack_policy": config.get("ack_policy", ""),
            "delivered_seq": delivered.get("stream_seq", 0),
            "ack_floor_seq": ack_floor.get("stream_seq", 0),
            "pending": info.get("num_pending", 0), "ack_pending": info.get("num_ack_pending", 0),
            "redelivered": info.get("num_redelivered", 0), "waiting": info.get("num_waiting", 0),
            "paused": bool(info.get("paused")),
            "last_active": _timestamp(delivered.get("last_active")), "info": info,
            "read_at": read_at,
        }

    def store(self, profile_id: int, stream: str, infos: list[dict[str, Any]],
              missing: list[str]) -> None:
        """A stream's consumers as just listed; those no longer listed are gone."""
        now = timezone.now()
        rows = [self.row(profile_id, stream, info, now) for info in infos]
        rows += [{**self.row(profile_id, stream, {"name": name}, now), "missing": True,
                  "delivered_seq": None, "ack_floor_seq": None, "pending": None,
                  "ack_pending": None, "redelivered": None, "waiting": None, "info": None}
                 for name in missing]
        with transaction.atomic():
            self._upsert(rows)
            self.filter(profile_id=profile_id, stream_name=stream, read_at__lt=now).delete()

    def store_one(self, profile_id: int, stream: str, info: dict[str, Any]) -> None:
        """The row of the one consumer a job created or changed."""
        self._upsert([self.row(profile_id, stream, info, timezone.now())])

    def forget(self, profile_id: int, stream: str, name: str) -> None:
        self.filter(profile_id=profile_id, stream_name=stream, name=name).delete()

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        statement = sql.insert(self.model,
                               ["profile", "stream_name", "name", *self.ROW_FIELDS],
                               upsert_on=["profile", "stream_name", "name"])
        with connection.cursor() as cursor:
            for start in range(0, len(rows), 1000):
                cursor.executemany(statement.sql, [statement.params(row)
                                                   for row in rows[start:start + 1000]])


class Consumer(models.Model):
    """What the broker last said about one consumer of a stream (read with the stream), so the
    stream's page renders its consumers from the database."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consumers")
    stream_name = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    missing = models.BooleanField(default=False)  # the cluster knows it, no replica answered
    durable = models.BooleanField(default=False)
    push = models.BooleanField(default=False)  # delivers to a subject; else pulled
    filter_subjects = models.JSONField(default=list, blank=True)
    ack_policy = models.CharField(max_length=16, blank=True)
    delivered_seq = UInt64Field(null=True)  # the stream sequence last delivered
    ack_floor_seq = UInt64Field(null=True)  # every message up to here is acknowledged
    pending = UInt64Field(null=True)  # matching messages not yet delivered: the lag
    ack_pending = UInt64Field(null=True)
    redelivered = UInt64Field(null=True)
    waiting = UInt64Field(null=True)  # pull requests waiting
    paused = models.BooleanField(default=False)
    last_active = models.DateTimeField(null=True)
    info = models.JSONField(null=True, blank=True)  # the server's CONSUMER.INFO JSON as read
    read_at = models.DateTimeField()

    objects = ConsumerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["profile", "stream_name", "name"],
                                               name="consumer_unique_per_stream")]

    def __str__(self) -> str:
        return self.name

    @property
    def config(self) -> dict[str, Any]:
        return (self.info or {}).get("config") or {}


class SeenAdvisory(models.Model):
    """A JetStream advisory already turned into an audit entry, written in the entry's
    transaction: the unique id makes recording idempotent, so a redelivered advisory or two
    listeners never write an entry twice. Kept a little longer than the capture stream keeps
    advisories (streams.outside forgets older ones)."""

    advisory_id = models.CharField(max_length=64, unique=True)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.advisory_id


class CaptureMark(models.Model):
    """How far the advisory listener has recorded a profile's capture stream: the stream (its
    creation time tells it from one made again under the same name) and the highest sequence
    recorded, written before the advisories are acknowledged. A purge moves the consumer's
    ack floor with the stream; this does not move, so what the purge removed unread is seen.
    A row of its own: the profile form saves every field of the Profile."""

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE, primary_key=True,
                                   related_name="+")
    stream_created = models.DateTimeField()
    seq = UInt64Field()

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.stream_created:%Y-%m-%d %H:%M:%S} #{self.seq}"


class PlanQuerySet(models.QuerySet["Plan"]):
    def propose(self, profile: Profile, desired: dict[str, dict[str, Any]], *, origin: str,
                context: Acting, delete_missing: bool = False) -> Plan:
        """A plan to make `profile`'s streams these configs ({name: config}), and with
        `delete_missing` to delete the streams on the server not among them: the entry point
        of every feature that changes streams in bulk (definitions, import, copy between
        profiles, restoring an audited version). Its steps come from a job (the live configs
        are the broker's; streams.plans.steps works them out); the plan_detail page shows them
        as they come."""
        with transaction.atomic():
            plan = self.create(
                profile=profile, origin=origin[:200], desired=desired,
                delete_missing=delete_missing,
                created_by=context.actor.get_username() if context.actor else "")
            plan.plan_job = Job.objects.submit(JobKind.STREAM_PLAN, profile, context, params={
                "plan": plan.pk, "origin": plan.origin, "streams": len(desired),
                "delete_missing": delete_missing})
            plan.save(update_fields=["plan_job"])
        return plan


class Plan(models.Model):
    """What applying desired stream configs to a profile would do (streams.plans), and then
    what it did. `steps` are worked out by the plan job from the live configs; `outcomes`
    ({name: {"outcome", "message", "err_code"}}) are written by the apply job as they come."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="plans")
    origin = models.CharField(max_length=200)  # "definitions", "import", "copy from staging"…
    desired = models.JSONField()  # {stream name: config}
    delete_missing = models.BooleanField(default=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    plan_job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    apply_job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    steps = models.JSONField(null=True, blank=True)  # [plans.Step], sorted by name
    outcomes = models.JSONField(default=dict, blank=True)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"plan #{self.pk} ({self.origin})"
