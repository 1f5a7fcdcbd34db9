"""/healthz: whether the dashboard's parts are up, for load balancers and docker-compose,
without a login, a secret or a broker call: the database, Redis, a worker's heartbeat, its
reaper's last round, and the advisory listener's heartbeat when a profile records changes made
outside. 200 when all are, else 503 naming what is not (django-health-check's view, which
also answers text/plain, JSON and OpenMetrics)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient

from streams.models import Profile, WorkerHeartbeat

# A part is down when it missed this many of its rounds.
MISSED = 3


def _since(at: Any) -> str:
    return f"{(timezone.now() - at).total_seconds():.0f} s ago" if at else "never"


@dataclasses.dataclass
class Worker(HealthCheck):
    """A Celery worker said it was alive within MISSED heartbeats."""

    def __repr__(self) -> str:  # the name the answer gives the part
        return "Celery worker"

    def run(self) -> None:
        seen = WorkerHeartbeat.objects.workers().order_by("-seen_at").values_list(
            "seen_at", flat=True).first()
        if seen is None or seen < timezone.now() - timedelta(
                seconds=MISSED * settings.WORKER_HEARTBEAT_INTERVAL):
            raise ServiceUnavailable(f"no worker is running (last seen {_since(seen)})")


@dataclasses.dataclass
class Reaper(HealthCheck):
    """Some worker's reaper (which fails jobs nobody will finish) ran within MISSED rounds."""

    def __repr__(self) -> str:
        return "Reaper"

    def run(self) -> None:
        reaped = WorkerHeartbeat.objects.workers().order_by("-reaped_at").values_list(
            "reaped_at", flat=True).first()
        if reaped is None or reaped < timezone.now() - timedelta(
                seconds=MISSED * settings.JOB_REAP_INTERVAL):
            raise ServiceUnavailable(f"the reaper has not run (last round {_since(reaped)})")


@dataclasses.dataclass
class Listener(HealthCheck):
    """With a profile recording changes made outside, the listener read its targets within
    MISSED rounds."""

    def __repr__(self) -> str:
        return "Advisory listener"

    def run(self) -> None:
        if not Profile.objects.filter(record_outside=True).exists():
            return
        seen = WorkerHeartbeat.objects.filter(name=WorkerHeartbeat.LISTENER).values_list(
            "seen_at", flat=True).first()
        if seen is None or seen < timezone.now() - timedelta(
                seconds=MISSED * settings.ADVISORY_REREAD_INTERVAL):
            raise ServiceUnavailable(f"the advisory listener is not running (last seen "
                                     f"{_since(seen)})")


class Healthz(HealthCheckView):
    checks = (
        Database,
        (Redis, {"client_factory": lambda: RedisClient.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)}),
        Worker,
        Reaper,
        Listener,
    )

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500:  # what the package answers when a check failed
            response.status_code = 503
        return response
