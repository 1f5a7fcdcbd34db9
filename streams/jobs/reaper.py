"""Jobs nobody will finish, failed with the reason; messages a browse or a download read,
forgotten after minutes; and the heartbeat by which workers say they are alive, so that reason
can tell "no worker is running" from "the workers were busy". All run on timers of each
worker's main process (memphisadmin.celery.Housekeeping)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from streams.errors import OperationError
from streams.jobs import outcome
from streams.models import Job, JobStatus, WorkerHeartbeat

WORKER_STOPPED = "the worker stopped before finishing the job (still running past its deadline)"
# How long a job's row keeps the messages it read (Job.MESSAGE_RESULTS): a browse's page for
# its reader to look at, a download for its reader to take (views.messages).
MESSAGES_KEPT = timedelta(minutes=10)


def reap_overdue() -> int:
    """Fail the overdue jobs; returns how many were failed."""
    running, queued = Job.objects.overdue()
    reaped = 0
    for job in running:
        outcome.fail(job, OperationError(WORKER_STOPPED))
        reaped += 1
    now = timezone.now()
    for job in queued:
        outcome.fail(job, OperationError(_why_not_picked_up(job, now)),
                     expected=JobStatus.QUEUED)
        reaped += 1
    return reaped


def forget_messages() -> int:
    """Messages read by a browse, or for a download never taken (the user left the job's
    page): after MESSAGES_KEPT the row keeps what was read, not the messages. Returns how many
    jobs forgot theirs."""
    stale = Job.objects.holding_messages().filter(
        finished_at__lt=timezone.now() - MESSAGES_KEPT)
    return sum(job.forget_messages() for job in stale.only("pk", "kind", "result"))


def stalled(job: Job) -> str:
    """Why an unfinished job will be failed by the reaper, or "" while it is on time. Reads
    only: pages show it at once, the reaper writes it."""
    now = timezone.now()
    if not job.is_overdue(now):
        return ""
    return WORKER_STOPPED if job.status == JobStatus.RUNNING else _why_not_picked_up(job, now)


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
