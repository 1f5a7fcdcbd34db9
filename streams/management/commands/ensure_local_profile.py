from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from streams import audit, profiles
from streams.models import Profile


class Command(BaseCommand):
    help = "Create (or point at URL) the ready-made connection profile for the local nats-server."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("url")
        parser.add_argument("--name", default="local")

    def handle(self, *args: Any, url: str, name: str, **options: Any) -> None:
        profile = Profile.objects.filter(name=name).first()
        if profile is None:
            profiles.save(Profile(name=name, servers=url,
                                  description="The JetStream server started by ./dev run"),
                          audit.Context(), actor_name="./dev run")
        elif profile.servers != url:
            before = audit.profile_snapshot(profile)
            profile.servers = url
            profiles.save(profile, audit.Context(), before=before, actor_name="./dev run")
        self.stdout.write(f"connection profile {name!r} → {url}")
