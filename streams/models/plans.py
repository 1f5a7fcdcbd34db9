"""Bulk changes to a profile's streams, proposed and then applied by jobs (streams.plans)."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from streams.models.audit import Acting
from streams.models.jobs import Job, JobKind
from streams.models.profiles import Profile


class PlanQuerySet(models.QuerySet["Plan"]):
    def propose(self, profile: Profile, desired: dict[str, dict[str, Any]], *, origin: str,
                context: Acting, delete_missing: bool = False) -> Plan:
        """A plan to make `profile`'s streams these configs ({name: config}), and with
        `delete_missing` to delete the streams on the server not among them: the entry point
        of every feature that changes streams in bulk (definitions, import, copy between
        profiles, restoring an audited version). Its steps come from a job (the live configs
        are the broker's; streams.plans.steps works them out); the plan_detail page shows them
        as they come."""
        with transaction.atomic():
            plan = self.create(
                profile=profile, origin=origin[:200], desired=desired,
                delete_missing=delete_missing,
                created_by=context.actor.get_username() if context.actor else "")
            plan.plan_job = Job.objects.submit(JobKind.STREAM_PLAN, profile, context, params={
                "plan": plan.pk, "origin": plan.origin, "streams": len(desired),
                "delete_missing": delete_missing})
            plan.save(update_fields=["plan_job"])
        return plan


class Plan(models.Model):
    """What applying desired stream configs to a profile would do (streams.plans), and then
    what it did. `steps` are worked out by the plan job from the live configs; `outcomes`
    ({name: {"outcome", "message", "err_code"}}) are written by the apply job as they come."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="plans")
    origin = models.CharField(max_length=200)  # "definitions", "import", "copy from staging"…
    desired = models.JSONField()  # {stream name: config}
    delete_missing = models.BooleanField(default=False)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    plan_job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    apply_job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    steps = models.JSONField(null=True, blank=True)  # [plans.Step], sorted by name
    outcomes = models.JSONField(default=dict, blank=True)

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"plan #{self.pk} ({self.origin})"
