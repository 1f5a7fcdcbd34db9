"""The one write path for audit entries, and the snapshots and diffs they carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from streams.models import AuditEvent, Job, Profile

SECRET_CHANGED = "changed"


@dataclass(frozen=True)
class Context:
    """Who is acting and from where; copied into every entry."""

    actor: Any = None
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Context:
        user = getattr(request, "user", None)
        return cls(
            actor=user if user is not None and user.is_authenticated else None,
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=getattr(request, "request_id", ""),
        )

    @classmethod
    def of_job(cls, job: Job) -> Context:
        """The context of whoever requested the job, for entries the worker writes."""
        requested = job.auditevent_set.filter(action="job.requested").first()
        if requested is None:
            return cls(actor=job.actor)
        return cls(job.actor, requested.ip, requested.user_agent, requested.request_id)


def record(
    action: str,
    context: Context,
    *,
    target_type: str = "",
    target_name: str = "",
    profile: Profile | None = None,
    job: Job | None = None,
    outcome: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    message: str = "",
    actor_name: str = "",
) -> AuditEvent:
    actor = context.actor
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else actor_name,
        ip=context.ip,
        user_agent=context.user_agent,
        request_id=context.request_id,
        action=action,
        target_type=target_type,
        target_name=target_name,
        profile=profile,
        profile_name=profile.name if profile is not None else "",
        job=job,
        outcome=outcome,
        before=before,
        after=after,
        changes=changes,
        message=message,
    )


def profile_snapshot(profile: Profile) -> dict[str, Any]:
    """The profile's settings with each secret reduced to whether it is set."""
    snapshot: dict[str, Any] = {}
    for field in Profile._meta.concrete_fields:
        if field.name in {"id", "created_at", "updated_at"} or field.name.startswith("last_"):
            continue
        value = getattr(profile, field.attname)
        snapshot[field.name] = bool(value) if field.name in Profile.SECRET_FIELDS else value
    return snapshot


def diff(
    before: dict[str, Any], after: dict[str, Any], secrets_changed: set[str] = frozenset()
) -> dict[str, Any]:
    """Field by field: {field: [old, new]}; a secret appears only as "changed"."""
    changes: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        if key in secrets_changed:
            changes[key] = SECRET_CHANGED
        elif before.get(key) != after.get(key):
            changes[key] = [before.get(key), after.get(key)]
    return dict(sorted(changes.items()))
