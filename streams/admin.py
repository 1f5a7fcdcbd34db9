from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from streams.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: entries are append-only, the admin may look but not touch."""

    list_display = ("seq", "at", "actor_name", "action", "target_type", "target_name",
                    "profile_name", "outcome", "message")
    list_filter = ("outcome", "target_type", "action")
    search_fields = ("actor_name", "action", "target_name", "profile_name", "message")
    actions = None
    list_per_page = 50  # the review page's size, so the benchmark compares like with like

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
