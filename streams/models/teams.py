"""Teams: who may see and change which connections. Each profile belongs to one team; each
member holds one role there (what a role may do is streams.policy's; changes to memberships,
with their audit entries, are streams.teams'). Single sign-on, later, adds a way to log in and
memberships it keeps from an identity provider's groups (`source`), not new columns. Also the
refusals' burst counter (streams.refusals)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from streams.crypto import EncryptedTextField

DEFAULT_TEAM = "Default"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class TeamQuerySet(models.QuerySet["Team"]):
    def default(self) -> Team:
        """The team a profile made without one joins (the CLI's local profile, profiles from
        before teams): superusers see it and may move its profiles to another."""
        return self.get_or_create(name=DEFAULT_TEAM)[0]


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Where the team hears of changes waiting for approval and of decisions (streams.webhooks):
    # a JSON POST signed with the secret.
    webhook_url = models.URLField("Webhook URL", max_length=500, blank=True)
    webhook_secret = EncryptedTextField("Webhook secret", blank=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def default_team() -> int:
    """Profile.team's default. Migrations call it too, while the table may still lack later
    columns: it reads the id alone."""
    found = Team.objects.filter(name=DEFAULT_TEAM).values_list("pk", flat=True).first()
    return found if found is not None else Team.objects.default().pk


class Membership(models.Model):
    """One user's role in one team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    # "local": set in the dashboard. Single sign-on will keep its own ("sso").
    source = models.CharField(max_length=16, default="local")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"],
                                               name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}: {self.role}"


class RefusalBurst(models.Model):
    """Refusals to one user from one address, less than LOGIN_LOCKOUT_MINUTES apart: counted
    here, so that only the first and the one at LOGIN_FAILURE_LIMIT reach the audit log."""

    actor_name = models.CharField(max_length=150)
    ip = models.GenericIPAddressField(null=True)
    started_at = models.DateTimeField()
    last_at = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.actor_name} from {self.ip}: {self.count}"


class WebhookDelivery(models.Model):
    """One event POSTed to a team's webhook, by a worker, retried until it is taken or
    WEBHOOK_ATTEMPTS have failed; the team's page lists the latest."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} to {self.team}"
