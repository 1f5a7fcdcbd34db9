from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from streams import audit
from streams.models import AuditEvent, Profile, Team


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key of ENCRYPTION_KEYS. Put the new key "
        "first, keep the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            count = 0
            for profile in Profile.objects.select_for_update():
                # Reading decrypts with whichever key matches; saving encrypts with the first.
                profile.save(update_fields=list(Profile.SECRET_FIELDS))
                count += 1
            teams = 0
            for team in Team.objects.select_for_update().exclude(webhook_secret=""):
                team.save(update_fields=["webhook_secret"])
                teams += 1
            AuditEvent.objects.record("secrets.rotated", audit.Context(), target_type="profile",
                                      outcome="succeeded",
                                      actor_name=f"manage.py ({getpass.getuser()})",
                                      message=f"re-encrypted the secrets of {count} profile(s) "
                                              f"and {teams} team webhook(s)")
        self.stdout.write(f"re-encrypted the secrets of {count} profile(s) and {teams} team "
                          "webhook(s)")
