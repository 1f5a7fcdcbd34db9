from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from streams import outside, singleton, wake
from streams.broker import advisories


class Command(BaseCommand):
    help = ("Record stream changes made outside the dashboard, for every profile with Record "
            "changes made outside on: the listener (`./dev watch`), one per deployment, held by a "
            "lock in Redis; a second one waits. Runs until SIGINT or SIGTERM.")

    def handle(self, *args: Any, **options: Any) -> None:
        with singleton.only_one("advisory listener"):
            advisories.watch(advisories.Recorders(
                outside.targets, outside.record, outside.record_lost, outside.record_rejected,
                outside.mark, outside.read_mark, outside.following),
                settings.ADVISORY_REREAD_INTERVAL, wake.listen)
