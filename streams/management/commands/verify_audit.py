from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams import audit
from streams.audit.integrity import HeadRef, verify
from streams.models import AuditEvent
from streams.progress import TerminalLine


def _head(value: str) -> HeadRef:
    try:
        return HeadRef.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _read_anchor(path: Path) -> HeadRef:
    try:
        return HeadRef.parse(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"--anchor {path}: {exc}") from exc


def _write_anchor(path: Path, head: HeadRef) -> None:
    """Replace the file in one step, readable by its owner only (mkstemp creates it 0600), so
    a crash never leaves a half-written anchor that would fail every later run."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(f"{head}\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise CommandError(f"--anchor {path}: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain and report the first entry that was altered, inserted or "
        "removed, or a chain head that was altered or removed. Exits non-zero when the chain is "
        "broken. Prints the verified head (#SEQ HASH); --anchor or --expect-head also check "
        "that the log still reaches a head verified earlier. The run itself is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchor", type=Path, metavar="PATH",
            help="file keeping the last verified head outside the database: checked when it "
                 "exists, written (mode 0600) with the current head after each successful run",
        )
        parser.add_argument(
            "--expect-head", type=_head, action="append", default=[], metavar="SEQ:HASH",
            help="a head an earlier run verified (as SEQ:HASH), kept elsewhere: the log must "
                 "still reach it (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        anchor: Path | None = options["anchor"]
        earlier: list[HeadRef] = list(options["expect_head"])
        if anchor is not None and anchor.exists():
            earlier.append(_read_anchor(anchor))
        with TerminalLine(self.stderr, "verified") as line:
            result = verify(reaches=earlier, progress=line)
        span = (f"#{result.first_seq}–#{result.last_seq}" if result.last_seq is not None
                else "no entries")
        head = result.head
        AuditEvent.objects.record("audit.verified", audit.Context(), target_type="audit",
                                  outcome="succeeded" if result.ok else "failed",
                                  actor_name=audit.command_actor(),
                                  after={"checked": result.checked,
                                         "problem_seq": result.problem_seq,
                                         "head": str(head) if head is not None else None},
                                  message=result.problem
                                          or f"{result.checked} entries intact ({span})")
        if not result.ok or head is None:
            raise CommandError(f"audit chain broken: {result.problem}")
        if anchor is not None:
            _write_anchor(anchor, head)
        self.stdout.write(f"audit chain intact: {result.checked} entries ({span}), "
                          f"head #{head.seq} {head.hash}")
