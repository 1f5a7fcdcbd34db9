"""The Celery app. Tasks receive job ids only; results live in our own Job rows."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps
from celery.signals import task_prerun, worker_process_shutdown
from django.conf import settings
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memphisadmin.settings")

app = Celery("memphisadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["streams.jobs"])
log = logging.getLogger(__name__)


class Housekeeping(bootsteps.StartStopStep):
    """The reaper and the heartbeat, on timers of the worker's main process: jobs run in the
    pool, so however long they take, overdue jobs are still failed on time, messages jobs
    read forgotten, requests nobody approved in time expired, and the worker still reports
    itself alive."""

    requires = {"celery.worker.components:Timer"}

    def start(self, worker: Any) -> None:
        # Imported here: this module is loaded before Django's apps, which the models need.
        from streams import approvals
        from streams.models import Job, WorkerHeartbeat

        beat = (WorkerHeartbeat.objects.note_alive, worker.hostname)
        worker.timer.call_after(0.0, _chore, beat)
        self.timers = [
            worker.timer.call_repeatedly(settings.WORKER_HEARTBEAT_INTERVAL, _chore, beat),
            worker.timer.call_repeatedly(settings.JOB_REAP_INTERVAL, _chore,
                                         (WorkerHeartbeat.objects.reap, worker.hostname)),
            worker.timer.call_repeatedly(settings.JOB_REAP_INTERVAL, _chore,
                                         (Job.objects.forget_expired_messages,)),
            worker.timer.call_repeatedly(settings.JOB_REAP_INTERVAL, _chore,
                                         (approvals.expire_due,)),
        ]

    def stop(self, worker: Any) -> None:
        for timer in getattr(self, "timers", []):
            timer.cancel()


def _chore(function: Callable[..., Any], *args: Any) -> None:
    close_old_connections()
    try:
        function(*args)
    except Exception:  # logged; the next round tries again
        log.exception("worker housekeeping: %s failed", function.__name__)


app.steps["worker"].add(Housekeeping)


@task_prerun.connect
def _close_unusable_connections(**kwargs: Any) -> None:
    """What Django does at each request: drop connections that errored or outlived
    CONN_MAX_AGE, keep the rest (see CELERY_DB_REUSE_MAX)."""
    close_old_connections()


@worker_process_shutdown.connect
def _close_broker_connections(**kwargs: Any) -> None:
    """Leave the brokers with a proper goodbye rather than a dropped socket."""
    from streams.broker import loop

    loop.close_kept_connections()
