"""Four-eyes changes. On a profile that requires approval, Job.objects.submit holds a change (a
job with its Approval); here another operator or admin of the team approves it (it then runs
as the requester's job) or rejects it, and the worker's housekeeping expires what nobody
decided within APPROVAL_HOURS. Every step is an audit entry; the team's approvers are told of a
request and the requester of the decision by email (streams.signals).

What an approver is shown is the held job itself (its kind and params are what will run) and,
for a change to a stream, how the stream's config now differs from what the requester saw: a
decision is taken on the page's fingerprint of that config, so a stream changed meanwhile is
shown again, never approved blind."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from streams import webhooks
from streams.audit import Context
from streams.errors import OperationError
from streams.models import (
    Approval,
    ApprovalStatus,
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Role,
    Stream,
)

log = logging.getLogger(__name__)


class DecisionRefused(Exception):
    """The request was decided, or expired, meanwhile, or its stream changed since the page
    showed it: the message says which."""


def current_config(approval: Approval) -> dict[str, Any] | None:
    """The target stream's config as the dashboard last read it (None: no such stream)."""
    job = approval.job
    return (Stream.objects.filter(profile_id=job.profile_id, name=job.target)
            .values_list("info__config", flat=True).first())


def fingerprint(config: dict[str, Any] | None) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def changes_since(approval: Approval) -> dict[str, tuple[Any, Any]]:
    """Each key of the stream's config that differs from what the requester saw: (then, now)."""
    then, now = approval.sighting or {}, current_config(approval) or {}
    return {key: (then.get(key), now.get(key)) for key in sorted(set(then) | set(now))
            if then.get(key) != now.get(key)}


def approve(approval: Approval, context: Context, *, comment: str, seen: str) -> None:
    """Let the held job run, as the requester's, once: two approvers at once run it once."""
    with transaction.atomic():
        current = _pending(approval)
        if seen != fingerprint(current_config(current)):
            raise DecisionRefused("The stream changed since this page showed it: review what "
                                  "the request would now change, then decide again.")
        _decide(current, ApprovalStatus.APPROVED, context, comment)
        job = current.job
        Job.objects.filter(pk=job.pk, status=JobStatus.HELD).update(
            status=JobStatus.QUEUED, queued_at=timezone.now())
        _record("approval.approved", "approved", job, context, comment)
        transaction.on_commit(job.enqueue)


def reject(approval: Approval, context: Context, *, comment: str) -> None:
    with transaction.atomic():
        current = _pending(approval)
        _decide(current, ApprovalStatus.REJECTED, context, comment)
        job = current.job
        who = context.actor.get_username()
        _record("approval.rejected", "rejected", job, context, comment)
        job.fail(OperationError(f"rejected by {who}" + (f": {comment}" if comment else "")),
                 expected=JobStatus.HELD)


def expire_due() -> int:
    """Drop the requests nobody decided in time; returns how many. Run on a timer of each
    worker's main process (memphisadmin.celery.Housekeeping)."""
    expired = 0
    for approval in Approval.objects.filter(status=ApprovalStatus.PENDING,
                                            expires_at__lt=timezone.now()):
        with transaction.atomic():
            current = (Approval.objects.select_for_update().select_related("job__profile")
                       .filter(pk=approval.pk, status=ApprovalStatus.PENDING).first())
            if current is None:
                continue
            _expire(current)
            expired += 1
    return expired


def _pending(approval: Approval) -> Approval:
    """The approval, locked, if it still waits for a decision. One past its time is refused
    here and expired by the housekeeping (this transaction rolls back with the refusal)."""
    current = (Approval.objects.select_for_update().select_related("job__profile", "job__actor")
               .get(pk=approval.pk))
    if current.status == ApprovalStatus.PENDING and current.expires_at <= timezone.now():
        raise DecisionRefused(f"This request expired: nobody approved it within "
                              f"{settings.APPROVAL_HOURS} h.")
    if current.status != ApprovalStatus.PENDING:
        by = f" by {current.decided_by_name}" if current.decided_by_name else ""
        raise DecisionRefused(f"This request was {current.get_status_display().lower()}{by} "
                              "meanwhile.")
    return current


def _decide(approval: Approval, status: str, context: Context, comment: str) -> None:
    approval.status = status
    approval.decided_by = context.actor
    approval.decided_by_name = context.actor.get_username()
    approval.decided_at = timezone.now()
    approval.comment = comment
    approval.save(update_fields=["status", "decided_by", "decided_by_name", "decided_at",
                                 "comment"])
    _tell_requester(approval)


def _record(action: str, verb: str, job: Job, context: Context, comment: str) -> None:
    AuditEvent.objects.record(
        action, context, target_type=JobKind(job.kind).target_type, target_name=job.target,
        profile=job.profile, job=job, outcome="succeeded",
        after={"requested_by": job.actor_name, "comment": comment},
        message=f"{verb} {job.actor_name}'s {job.get_kind_display().lower()}"
                + (f": {comment}" if comment else ""))


def _expire(approval: Approval) -> None:
    approval.status = ApprovalStatus.EXPIRED
    approval.decided_at = timezone.now()
    approval.save(update_fields=["status", "decided_at"])
    _tell_requester(approval)
    job = approval.job
    hours = settings.APPROVAL_HOURS
    AuditEvent.objects.record(
        "approval.expired", Context(), target_type=JobKind(job.kind).target_type,
        target_name=job.target, profile=job.profile, job=job, outcome="failed",
        actor_name="memphisadmin",
        message=f"{job.actor_name}'s {job.get_kind_display().lower()}: nobody approved it "
                f"within {hours} h")
    job.fail(OperationError(f"expired: nobody approved it within {hours} h"),
             expected=JobStatus.HELD)


def _event(approval: Approval) -> dict[str, Any]:
    """What a webhook event says of a request (never its params: a publish's body)."""
    job = approval.job
    return {"request": job.pk, "kind": job.kind, "target": job.target,
            "connection": job.profile_name, "requested_by": job.actor_name,
            "status": approval.status, "decided_by": approval.decided_by_name,
            "comment": approval.comment, "path": reverse("approval_detail", args=[job.pk])}


def tell_approvers(approval: Approval) -> None:
    """Email the team's members who may decide (operators and admins but the requester), and
    tell the team's webhook."""
    job = approval.job
    team = job.profile.team
    webhooks.announce(team, "approval.requested", _event(approval))
    to = list(team.memberships.filter(role__in=[Role.OPERATOR, Role.ADMIN])
              .exclude(user_id=job.actor_id).exclude(user__email="")
              .values_list("user__email", flat=True))
    _mail(to, f"Approval asked: {job.get_kind_display().lower()} {job.target} on "
              f"{job.profile_name}",
          f"{job.actor_name} asks to {job.get_kind_display().lower()} {job.target} on "
          f"{job.profile_name} (team {team.name}). Nothing runs until another operator or "
          f"admin approves it, within {settings.APPROVAL_HOURS} h: "
          f"{reverse('approval_detail', args=[job.pk])}")


def _tell_requester(approval: Approval) -> None:
    job = approval.job
    webhooks.announce(job.profile.team, f"approval.{approval.status}", _event(approval))
    if job.actor is None or not job.actor.email:
        return
    by = f" by {approval.decided_by_name}" if approval.decided_by_name else ""
    comment = f": {approval.comment}" if approval.comment else ""
    _mail([job.actor.email],
          f"{approval.get_status_display()}: {job.get_kind_display().lower()} {job.target}",
          f"Your request to {job.get_kind_display().lower()} {job.target} on "
          f"{job.profile_name} was {approval.get_status_display().lower()}{by}{comment}. "
          f"{reverse('approval_detail', args=[job.pk])}")


def _mail(to: list[str], subject: str, body: str) -> None:
    """Sent once the decision is committed, through Django's mail settings; a mail server
    that fails is logged, never fails the decision."""
    if not to:
        return

    def send() -> None:
        try:
            send_mail(subject, body, None, to)
        except Exception:
            log.exception("approval mail to %d recipient(s) not sent", len(to))

    transaction.on_commit(send)
