"""Changes to connection profiles, each with its audit entry in the same transaction: the one
write path for the profile screens and for `manage.py ensure_local_profile` alike. A change to
whether advisories are kept submits the job that makes or removes the capture stream."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db import transaction

from streams import audit, system_streams, wake
from streams.models import AuditEvent, Job, JobKind, Profile


class ChangedMeanwhile(Exception):
    """Someone else saved the profile after this change's form was loaded."""


def save(profile: Profile, context: audit.Context, *, before: dict[str, Any] | None = None,
         loaded_at: datetime | None = None, secrets_changed: Collection[str] = frozenset(),
         actor_name: str = "") -> Profile:
    """Create the profile (`before` None) or change it (`before` its snapshot as it was). A
    change made from a form loaded at `loaded_at` is refused if the profile was saved since:
    two people editing one profile never silently overwrite each other."""
    with transaction.atomic():
        if loaded_at is not None:  # the row is locked (SQLite: the whole write) until commit
            saved_at = (Profile.objects.select_for_update().filter(pk=profile.pk)
                        .values_list("updated_at", flat=True).first())
            if saved_at != loaded_at:
                raise ChangedMeanwhile
        profile.save()
        after = audit.profile_snapshot(profile)
        if before is None:
            AuditEvent.objects.record("profile.created", context, target_type="profile",
                                      target_name=profile.name, profile=profile,
                                      outcome="succeeded", after=after, actor_name=actor_name)
        else:
            AuditEvent.objects.record("profile.changed", context, target_type="profile",
                                      target_name=profile.name, profile=profile,
                                      outcome="succeeded", before=before, after=after,
                                      actor_name=actor_name,
                                      changes=audit.diff(before, after, set(secrets_changed)))
        kept_before = bool(before and before["record_outside"] and before["keep_advisories"])
        if profile.keeps_advisories != kept_before:  # the capture stream comes or goes
            Job.objects.submit(JobKind.ADVISORY_CAPTURE, profile, context,
                               target=system_streams.CAPTURE_STREAM)
        transaction.on_commit(wake.tell_listener)  # what it follows may have changed
    return profile


def delete(profile: Profile, context: audit.Context) -> None:
    with transaction.atomic():
        Profile.objects.lock(profile.pk)  # before the chain's head, as a job's end takes them
        AuditEvent.objects.record("profile.deleted", context, target_type="profile",
                                  target_name=profile.name, outcome="succeeded",
                                  before=audit.profile_snapshot(profile))
        profile.delete()
        transaction.on_commit(wake.tell_listener)
