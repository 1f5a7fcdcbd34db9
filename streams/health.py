"""/healthz: whether the dashboard's parts are up, for load balancers and docker-compose,
without a login, a secret or a broker call: the database, Redis, a worker's heartbeat, its
reaper's last round, the scheduler's heartbeat when there is a connection to check, and the
advisory listener's heartbeat when a profile records changes made outside. 200 when all are,
else 503 naming what is not (django-health-check's view, which also answers text/plain, JSON
and OpenMetrics). `late` answers docker-compose's healthchecks of the worker, the listener
and the scheduler (manage.py alive)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient

from streams import checks
from streams.models import Profile, WorkerHeartbeat

# A part is down when it missed this many of its rounds.
MISSED = 3


def _latest(rows: QuerySet[WorkerHeartbeat], field: str) -> datetime | None:
    return rows.order_by(f"-{field}").values_list(field, flat=True).first()


def late(name: str, interval: float) -> str:
    """"" when the process `name` (a worker's node name, WorkerHeartbeat.LISTENER or
    SCHEDULER) of this deployment said it was alive within MISSED rounds of `interval`."""
    return _missed(_latest(WorkerHeartbeat.objects.of_this_deployment().filter(name=name),
                           "seen_at"), interval)


def _missed(at: datetime | None, interval: float) -> str:
    """"" when `at` is within MISSED rounds of `interval` seconds, else how long ago it was."""
    if at is not None and at >= timezone.now() - timedelta(seconds=MISSED * interval):
        return ""
    return f"{(timezone.now() - at).total_seconds():.0f} s ago" if at else "never"


@dataclasses.dataclass
class Worker(HealthCheck):
    """A Celery worker said it was alive within MISSED heartbeats."""

    def __repr__(self) -> str:  # the name the answer gives the part
        return "Celery worker"

    def run(self) -> None:
        seen = _latest(WorkerHeartbeat.objects.of_this_deployment().workers(), "seen_at")
        if late := _missed(seen, settings.WORKER_HEARTBEAT_INTERVAL):
            raise ServiceUnavailable(f"no worker is running (last seen {late})")


@dataclasses.dataclass
class Reaper(HealthCheck):
    """Some worker's reaper (which fails jobs nobody will finish) ran within MISSED rounds."""

    def __repr__(self) -> str:
        return "Reaper"

    def run(self) -> None:
        reaped = _latest(WorkerHeartbeat.objects.of_this_deployment().workers(), "reaped_at")
        if late := _missed(reaped, settings.JOB_REAP_INTERVAL):
            raise ServiceUnavailable(f"the reaper has not run (last round {late})")


@dataclasses.dataclass
class Listener(HealthCheck):
    """With a profile recording changes made outside, the listener read its targets within
    MISSED rounds."""

    def __repr__(self) -> str:
        return "Advisory listener"

    def run(self) -> None:
        if not Profile.objects.filter(record_outside=True).exists():
            return
        if ago := late(WorkerHeartbeat.LISTENER, settings.ADVISORY_REREAD_INTERVAL):
            raise ServiceUnavailable(f"the advisory listener is not running (last seen {ago})")


@dataclasses.dataclass
class Scheduler(HealthCheck):
    """With a connection to check, the scheduler ran a round within MISSED rounds."""

    def __repr__(self) -> str:
        return "Scheduler"

    def run(self) -> None:
        if not Profile.objects.exists():
            return
        if ago := late(WorkerHeartbeat.SCHEDULER, checks.TICK):
            raise ServiceUnavailable(f"the scheduler is not running (last seen {ago}): "
                                     "connections are not checked")


class Healthz(HealthCheckView):
    checks = (
        Database,
        (Redis, {"client_factory": lambda: RedisClient.from_url(  # the queue's Redis
            current_app.conf.broker_url, socket_connect_timeout=1, socket_timeout=1)}),
        Worker,
        Reaper,
        Listener,
        Scheduler,
    )

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:  # what the package answers when a check failed
            response.status_code = 503
        return response
