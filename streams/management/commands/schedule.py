from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from streams import checks, singleton

log = logging.getLogger(__name__)

TIDY_EVERY = 60  # rounds between tidy-ups


class Command(BaseCommand):
    help = ("Check every connection in the background (the home page's health, the charts' "
            "samples): the scheduler (`./dev schedule`), one per deployment, held by a lock in "
            "Redis; a second one waits. Runs until SIGINT or SIGTERM.")

    def handle(self, *args: Any, **options: Any) -> None:
        with singleton.only_one("scheduler"):
            stop = threading.Event()  # ends the round in progress, then lets the lock go
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            rounds = 0
            while not stop.is_set():
                close_old_connections()
                try:
                    checks.submit_due()
                    if rounds % TIDY_EVERY == 0:
                        checks.tidy()
                except Exception:  # logged; the next round tries again
                    log.exception("scheduler round failed")
                rounds += 1
                stop.wait(checks.TICK)
