from __future__ import annotations

from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        from streams import signals  # noqa: F401  (login / logout audit receivers)
