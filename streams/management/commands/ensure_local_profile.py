from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from streams import audit
from streams.models import Profile


class Command(BaseCommand):
    help = "Create (or point at URL) the ready-made connection profile for the local nats-server."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("url")
        parser.add_argument("--name", default="local")

    def handle(self, *args: Any, url: str, name: str, **options: Any) -> None:
        profile, created = Profile.objects.get_or_create(
            name=name,
            defaults={"servers": url, "description": "The JetStream server started by ./dev run"},
        )
        if created:
            audit.record("profile.created", audit.Context(), target_type="profile",
                         target_name=name, profile=profile, outcome="succeeded",
                         after=audit.profile_snapshot(profile), actor_name="./dev run")
        elif profile.servers != url:
            before = audit.profile_snapshot(profile)
            profile.servers = url
            profile.save(update_fields=["servers", "updated_at"])
            after = audit.profile_snapshot(profile)
            audit.record("profile.changed", audit.Context(), target_type="profile",
                         target_name=name, profile=profile, outcome="succeeded", before=before,
                         after=after, changes=audit.diff(before, after), actor_name="./dev run")
        self.stdout.write(f"connection profile {name!r} → {url}")
