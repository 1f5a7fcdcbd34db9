from __future__ import annotations

import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams import checks, health
from streams.models import WorkerHeartbeat


class Command(BaseCommand):
    help = ("Exit 0 when this container's Celery worker (celery@<hostname>), or the "
            "deployment's advisory listener or scheduler, said it was alive lately; else 1, "
            "saying when it last did: docker-compose's healthchecks.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("part", choices=["worker", "listener", "scheduler"])

    def handle(self, *args: Any, part: str, **options: Any) -> None:
        name, interval = {
            "worker": (f"celery@{socket.gethostname()}", settings.WORKER_HEARTBEAT_INTERVAL),
            "listener": (WorkerHeartbeat.LISTENER, settings.ADVISORY_REREAD_INTERVAL),
            "scheduler": (WorkerHeartbeat.SCHEDULER, checks.TICK),
        }[part]
        if ago := health.late(name, interval):
            raise CommandError(f"{name} last seen {ago}")
        self.stdout.write(f"{name}: alive")
