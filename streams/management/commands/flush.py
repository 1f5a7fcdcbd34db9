from __future__ import annotations

from typing import Any

from django.core.management.commands import flush

from streams import audit


class Command(flush.Command):
    """Django's flush, with the audit tables' delete guard opened for its one transaction
    (the test suite flushes between transactional tests), leaving the empty log's chain head
    as migrate does."""

    def handle(self, **options: Any) -> None:
        # Ask before taking the write lock rather than holding it while a person reads.
        if options["interactive"] and input(
            f'Delete ALL data, the audit log included, from the "{options["database"]}" '
            "database? Type 'yes' to continue: "
        ) != "yes":
            self.stdout.write("Flush cancelled.")
            return
        with audit.deletion_gate(options["database"]):
            super().handle(**{**options, "interactive": False})
            audit.start_chain(options["database"])
