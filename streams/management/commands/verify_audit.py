from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from streams import audit


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain and report the first entry that was altered, inserted or "
        "removed, or a chain head that was altered or removed. Exits non-zero when the chain is "
        "broken. Prints the verified head (#SEQ HASH). The run itself is audited."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit.verify()
        span = (f"#{result.first_seq}–#{result.last_seq}" if result.last_seq is not None
                else "no entries")
        head = result.head
        audit.record("audit.verified", audit.Context(), target_type="audit",
                     outcome="succeeded" if result.ok else "failed",
                     actor_name=audit.command_actor(),
                     after={"checked": result.checked, "problem_seq": result.problem_seq,
                            "head": str(head) if head is not None else None},
                     message=result.problem or f"{result.checked} entries intact ({span})")
        if not result.ok or head is None:
            raise CommandError(f"audit chain broken: {result.problem}")
        self.stdout.write(f"audit chain intact: {result.checked} entries ({span}), "
                          f"head #{head.seq} {head.hash}")
