"""Changes to teams and memberships, each with its audit entry (before and after) in the same
transaction: the one write path for the team screens. A team always keeps an admin, and a
change made from a page that showed another role is refused, not applied over it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction

from streams.models import Acting, AuditEvent, Membership, Role, Team


class TeamChangeRefused(Exception):
    """A membership change that would leave the team without an admin, or that acts on what
    another admin changed meanwhile: the message says which."""


def found(name: str, context: Acting) -> Team:
    with transaction.atomic():
        team = Team.objects.create(name=name)
        AuditEvent.objects.record("team.created", context, target_type="team", target_name=name,
                                  outcome="succeeded", after={"name": name},
                                  message=f"founded team {name}")
    return team


def add(team: Team, user: Any, role: str, context: Acting) -> Membership:
    with transaction.atomic():
        if Membership.objects.filter(team=team, user=user).exists():
            raise TeamChangeRefused(f"{user.get_username()} is a member of {team.name} already.")
        membership = Membership.objects.create(team=team, user=user, role=role)
        _record(membership, "team.member_added", context, None, role,
                f"added {user.get_username()} as {Role(role).label.lower()}")
    return membership


def change_role(membership: Membership, role: str, *, seen: str, context: Acting) -> None:
    """From the role the page showed (`seen`) to `role`, unless another admin changed it
    meanwhile, or it is the team's last admin stepping down."""
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(pk=membership.pk).first()
        if current is None or current.role != seen:
            raise TeamChangeRefused(f"{membership.user.get_username()}'s role was changed "
                                    "meanwhile: the list shows it now.")
        if role == current.role:
            return
        _keeps_an_admin(current)
        Membership.objects.filter(pk=current.pk).update(role=role)
        _record(current, "team.role_changed", context, current.role, role,
                f"{current.user.get_username()}: {Role(current.role).label.lower()} → "
                f"{Role(role).label.lower()}")


def remove(membership: Membership, context: Acting) -> None:
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(pk=membership.pk).first()
        if current is None:
            raise TeamChangeRefused("That member was removed meanwhile: the list shows the "
                                    "team now.")
        _keeps_an_admin(current)
        current.delete()
        _record(current, "team.member_removed", context, current.role, None,
                f"removed {current.user.get_username()}")


def _keeps_an_admin(membership: Membership) -> None:
    """Called before this member's role changes or they leave."""
    if membership.role == Role.ADMIN and not Membership.objects.filter(
            team_id=membership.team_id, role=Role.ADMIN).exclude(pk=membership.pk).exists():
        raise TeamChangeRefused(f"{membership.user.get_username()} is the last admin of "
                                f"{membership.team.name}: make another member admin first.")


def _record(membership: Membership, action: str, context: Acting, before: str | None,
            after: str | None, message: str) -> None:
    who = membership.user.get_username()
    AuditEvent.objects.record(
        action, context, target_type="team", target_name=membership.team.name,
        outcome="succeeded", message=f"{membership.team.name}: {message}",
        before={"user": who, "role": before} if before else None,
        after={"user": who, "role": after} if after else None)


def set_webhook(team: Team, url: str, secret: str, context: Acting) -> None:
    """A new address (empty: none) and, when given, a new secret; the entry says whether the
    secret changed, never what it is."""
    with transaction.atomic():
        before = {"url": _shown(team.webhook_url)}
        team.webhook_url = url
        if secret:
            team.webhook_secret = secret
        if not url:
            team.webhook_secret = ""
        team.save(update_fields=["webhook_url", "webhook_secret"])
        AuditEvent.objects.record(
            "team.webhook_changed", context, target_type="team", target_name=team.name,
            outcome="succeeded", before=before,
            after={"url": _shown(url),
                   "secret": "changed" if secret else "kept" if url else "removed"},
            message=f"{team.name}: webhook {'set to ' + _shown(url) if url else 'removed'}")


def _shown(url: str) -> str:
    """The address without any user name and password it holds."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if url else ""
