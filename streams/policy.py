"""Who may do what to which connection: the one answer, asked by views (before a page or a
change), templates (which buttons show), list querysets, and jobs (at submit and again when a
worker runs them). No other module reads a role; the rows' querysets ask it what a user
sees (Job.objects.seen_by, AuditEvent.objects.seen_by).

A connection profile belongs to one team, and a member's role there says what they may do
(RULES): a viewer sees, an operator changes, an admin also deletes and manages the team.
Superusers do everything. A read-only profile refuses every change to its streams, consumers,
messages and definitions, whoever asks; reads, connection tests and the advisory listener go
on, and its admins may still edit the profile (to make it writable again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from streams.models.profiles import Profile
from streams.models.teams import Membership, Role, Team


@dataclass(frozen=True)
class Rule:
    role: Role  # the least role that may
    changes: bool  # a change: refused on a read-only profile
    what: str  # how a refusal names it


VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN
RULES = {
    "view": Rule(VIEWER, False, "see this connection"),
    "test": Rule(OPERATOR, False, "test the connection"),
    "stream.create": Rule(OPERATOR, True, "create streams"),
    "stream.edit": Rule(OPERATOR, True, "edit streams"),
    "stream.purge": Rule(OPERATOR, True, "purge streams"),
    "stream.delete": Rule(ADMIN, True, "delete streams"),
    "consumer.create": Rule(OPERATOR, True, "create consumers"),
    "consumer.edit": Rule(OPERATOR, True, "edit consumers"),
    "consumer.pause": Rule(OPERATOR, True, "pause and resume consumers"),
    "consumer.delete": Rule(ADMIN, True, "delete consumers"),
    "message.publish": Rule(OPERATOR, True, "publish messages"),
    "message.delete": Rule(OPERATOR, True, "delete messages"),
    "definitions.adopt": Rule(OPERATOR, True, "adopt streams"),
    "definitions.import": Rule(OPERATOR, True, "import definitions"),
    "definitions.copy": Rule(OPERATOR, True, "copy definitions into this connection"),
    "plan": Rule(OPERATOR, False, "plan changes"),
    "plan.apply": Rule(OPERATOR, True, "apply plans"),
    "plan.delete": Rule(ADMIN, True, "delete streams by a plan"),
    "profile.edit": Rule(ADMIN, False, "edit this connection"),
    "profile.delete": Rule(ADMIN, False, "delete this connection"),
    "team.members": Rule(ADMIN, False, "manage the team's members"),
    "approve": Rule(OPERATOR, False, "approve or reject changes"),
}

def roles(user: Any) -> dict[int, Role]:
    """The user's role in each of their teams ({team id: role}), read once per user object
    (a request's), since a page asks for many buttons."""
    if not getattr(user, "is_authenticated", False):
        return {}
    if not hasattr(user, "_team_roles"):
        user._team_roles = {team: Role(role) for team, role in
                            Membership.objects.filter(user=user).values_list("team", "role")}
    return user._team_roles


def role(user: Any, profile: Profile) -> Role | None:
    return roles(user).get(profile.team_id)


def sees(user: Any, profile: Profile) -> bool:
    return getattr(user, "is_superuser", False) or role(user, profile) is not None


def refusal(user: Any, action: str, profile: Profile) -> str | None:
    """Why `user` may not do `action` on `profile`, or None when they may. A user who may not
    see the profile is told nothing more (views answer 404, as for a missing one)."""
    rule = RULES[action]
    if rule.changes and profile.read_only:
        return f"{profile.name} is read-only: nothing on it is changed from here"
    return _role_refusal(user, rule, profile)


def _role_refusal(user: Any, rule: Rule, profile: Profile) -> str | None:
    if getattr(user, "is_superuser", False):
        return None
    held = role(user, profile)
    if held is None:
        return f"{profile.name} belongs to a team you are not in"
    if held.rank < rule.role.rank:
        return (f"your role in {profile.team.name} is {held.label.lower()}: "
                f"only {rule.role.label.lower()}s and above may {rule.what}")
    return None


def may(user: Any, action: str, profile: Profile) -> bool:
    return refusal(user, action, profile) is None


def job_refusal(job: Any) -> str | None:
    """Asked when a job is submitted and again when a worker runs it (Job.action says what it
    does). Jobs nobody asked for (the listener's reads, housekeeping) need no one's
    permission."""
    if job.actor_id is None or job.profile is None:
        return None
    return refusal(job.actor, job.action, job.profile)


def stop_refusal(user: Any, job: Any) -> str | None:
    """Why `user` may not stop this job (Job.cancel): whoever may run it on its profile may
    stop it, on a profile made read-only meanwhile too, since stopping changes nothing more."""
    return _role_refusal(user, RULES[job.action], job.profile)


def profiles(user: Any) -> QuerySet[Profile]:
    """The profiles `user` sees: their teams', or every one for a superuser."""
    if getattr(user, "is_superuser", False):
        return Profile.objects.all()
    return Profile.objects.filter(team__in=list(roles(user)))


def teams(user: Any, least: Role = VIEWER) -> QuerySet[Team]:
    """The teams where `user` holds at least `least` (every team for a superuser)."""
    if getattr(user, "is_superuser", False):
        return Team.objects.all()
    return Team.objects.filter(pk__in=[team for team, held in roles(user).items()
                                       if held.rank >= least.rank])


def colleagues(user: Any) -> QuerySet[Any]:
    """The accounts `user` may see named (filter suggestions): their teams' members and
    themselves, or every account for a superuser."""
    users = get_user_model().objects.all()
    if getattr(user, "is_superuser", False):
        return users
    return users.filter(Q(memberships__team__in=list(roles(user))) | Q(pk=user.pk)).distinct()


def manages(user: Any, team: Team) -> bool:
    """Whether `user` may add and remove the team's members and set their roles."""
    return getattr(user, "is_superuser", False) or roles(user).get(team.pk) == ADMIN


def adds_profiles(user: Any) -> bool:
    """Whether `user` may add connections: to a team they administer (a superuser, to any,
    the Default team when there is none yet)."""
    return getattr(user, "is_superuser", False) or teams(user, ADMIN).exists()


def needs_approval(job: Any) -> bool:
    """A change to a profile that requires approval waits for another member's."""
    return job.profile.requires_approval and RULES[job.action].changes


def approval_refusal(user: Any, job: Any) -> str | None:
    """Why `user` may not approve or reject this held job: nobody decides on their own
    request, and only the team's operators and admins (and superusers) decide."""
    if job.actor_id is not None and job.actor_id == user.pk:
        return "nobody approves or rejects their own request: another member decides"
    return refusal(user, "approve", job.profile)
