"""Saved connections to NATS servers and Memphis brokers: what every other row belongs to."""

from __future__ import annotations

from django.db import connections, models

from streams.crypto import EncryptedTextField
from streams.models.teams import Team, default_team


class BrokerKind(models.TextChoices):
    NATS = "nats", "NATS"
    MEMPHIS = "memphis", "Memphis"


class AuthMethod(models.TextChoices):
    NONE = "none", "None"
    USER_PASSWORD = "user_password", "User and password"
    TOKEN = "token", "Token"
    MEMPHIS_TOKEN = "memphis_token", "Memphis connection token"
    MEMPHIS_PASSWORD = "memphis_password", "Memphis application user and password"
    NKEY = "nkey", "NKey seed"
    CREDS = "creds", "Credentials file"


class ProfileQuerySet(models.QuerySet["Profile"]):
    def lock(self, pk: int | None, *, no_key: bool = False) -> None:
        """Hold the profile's row until the transaction ends (PostgreSQL; SQLite's IMMEDIATE
        transactions hold the whole database already). A transaction that takes the row and the
        audit chain's head takes the row first, so that two never wait for each other. `no_key`
        (FOR NO KEY UPDATE): rows that only refer to the profile may still be stored."""
        if pk is not None and connections[self.db].features.has_select_for_update:
            list(self.select_for_update(no_key=no_key).filter(pk=pk).only("pk"))

    def note_version(self, profile: Profile | None, version: str | None) -> None:
        """Jobs see the server's version: keep the forms' version gates current."""
        if version and profile is not None and profile.last_server_version != version:
            self.filter(pk=profile.pk).update(last_server_version=version)


class Profile(models.Model):
    """A saved connection to a NATS server or a Memphis broker."""

    SECRET_FIELDS = ("password", "token", "nkey_seed", "creds", "tls_client_key")

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # Whose connection it is: the team's roles say who may see and change it (streams.policy).
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="profiles",
                             default=default_team)
    read_only = models.BooleanField(
        "Read-only", default=False,
        help_text="Nothing on this broker is changed from the dashboard, by anyone: no stream, "
                  "consumer, message or definition. Reads, connection tests and recording "
                  "changes made outside go on.")
    requires_approval = models.BooleanField(
        "Changes need approval", default=False,
        help_text="Every change (streams, consumers, messages, definitions, plans) waits until "
                  "another operator or admin of the team approves it; nobody approves their own.")
    broker_kind = models.CharField(
        "broker kind", max_length=16, choices=BrokerKind.choices, default=BrokerKind.NATS
    )
    servers = models.TextField(help_text="One URL per line: nats://host:4222 or tls://host:4222")
    connect_timeout = models.FloatField("connect timeout (s)", default=2.0)
    js_domain = models.CharField("JetStream domain", max_length=100, blank=True)
    js_api_prefix = models.CharField("JetStream API prefix", max_length=200, blank=True)

    auth_method = models.CharField(
        "authentication", max_length=32, choices=AuthMethod.choices, default=AuthMethod.NONE
    )
    username = models.CharField("user", max_length=200, blank=True)
    password = EncryptedTextField(blank=True)
    token = EncryptedTextField(blank=True)
    nkey_seed = EncryptedTextField("NKey seed", blank=True)
    creds = EncryptedTextField("credentials", blank=True)

    tls_ca = models.TextField("CA bundle (PEM)", blank=True)
    tls_client_cert = models.TextField("client certificate (PEM)", blank=True)
    tls_client_key = EncryptedTextField("client key (PEM)", blank=True)
    tls_server_name = models.CharField("TLS server name", max_length=255, blank=True)

    # What the jobs last saw of the server, for the forms' version gates (the last check's
    # outcome is the profile's ConnectionHealth).
    last_server_version = models.CharField(max_length=32, blank=True)

    record_outside = models.BooleanField(
        "Record changes made outside", default=False,
        help_text="Streams created, edited or deleted on this broker by anyone but this "
                  "dashboard go into the audit log, with who did it and how the stream now "
                  "differs from its definition here (the advisory listener, ./dev watch, "
                  "must run).")
    keep_advisories = models.BooleanField(
        "Keep advisories in a capture stream while the listener is down", default=False)
    # What the last capture-stream job found (streams.jobs.kinds.advisories).
    last_capture_at = models.DateTimeField(null=True, blank=True)
    last_capture_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    last_capture_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def server_list(self) -> list[str]:
        return [line.strip() for line in self.servers.splitlines() if line.strip()]

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_client_cert) or any(
            url.startswith("tls://") for url in self.server_list
        )

    @property
    def keeps_advisories(self) -> bool:
        """Whether the capture stream should exist on the broker: only while recording."""
        return self.record_outside and self.keep_advisories
