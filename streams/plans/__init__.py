"""Plans: what applying desired stream configs to a profile would do, shown before anything
runs, then applied as one job.

propose  (web)  store a Plan and submit the job that reads the live configs and works out its
                steps; the entry point of every feature that changes streams in bulk
                (definitions, import, copy between profiles, restoring an audited version)
steps           the planning itself, pure: no database, no broker"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from streams import audit
from streams.models import Job, JobKind, Plan, Profile


def propose(profile: Profile, desired: dict[str, dict[str, Any]], *, origin: str,
            context: audit.Context, delete_missing: bool = False) -> Plan:
    """A plan to make `profile`'s streams these configs ({name: config}), and with
    `delete_missing` to delete the streams on the server not among them. Its steps come from
    a job (the live configs are the broker's); the plan_detail page shows them as they come."""
    with transaction.atomic():
        plan = Plan.objects.create(
            profile=profile, origin=origin[:200], desired=desired, delete_missing=delete_missing,
            created_by=context.actor.get_username() if context.actor else "")
        plan.plan_job = Job.objects.submit(JobKind.STREAM_PLAN, profile, context, params={
            "plan": plan.pk, "origin": plan.origin, "streams": len(desired),
            "delete_missing": delete_missing})
        plan.save(update_fields=["plan_job"])
    return plan
