from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from streams import audit
from streams.audit.integrity import prune
from streams.progress import TerminalLine


def _moment(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--before wants a date (2026-01-31) or date-time, not {value!r}")
        moment = datetime.combine(day, time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Remove audit entries older than --before and leave a signed checkpoint, so that "
        "verify_audit still passes. The pruning itself is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", required=True, type=_moment,
                            help="remove entries written before this date (UTC unless given)")

    def handle(self, *args: Any, **options: Any) -> None:
        with TerminalLine(self.stderr, "removed") as line:
            pruned = prune(options["before"], audit.Context(),
                           actor_name=audit.command_actor(), progress=line)
        if pruned.up_to_seq is None:
            self.stdout.write("nothing to prune")
        else:
            self.stdout.write(f"removed {pruned.removed} entries (up to #{pruned.up_to_seq}); "
                              "checkpoint written")
