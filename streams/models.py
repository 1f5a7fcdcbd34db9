from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models

from streams.crypto import EncryptedTextField


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


class Profile(models.Model):
    """A saved connection to a NATS server or a Memphis broker."""

    SECRET_FIELDS = ("password", "token", "nkey_seed", "creds", "tls_client_key")

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
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

    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_server_version = models.CharField(max_length=32, blank=True)
    last_check_error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

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


class JobKind(models.TextChoices):
    TEST_CONNECTION = "test_connection", "Test connection"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """One broker operation. The row is the source of truth for its progress and outcome."""

    FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)

    kind = models.CharField(max_length=32, choices=JobKind.choices)
    profile = models.ForeignKey(Profile, null=True, on_delete=models.SET_NULL, related_name="jobs")
    profile_name = models.CharField(max_length=100)
    target = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    err_code = models.IntegerField(null=True, blank=True)
    error_field = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class AuditEvent(models.Model):
    """Append-only record of who did what, when, to which target, and how it ended. Names are
    copied, not only referenced, so entries outlive what they describe."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=32, blank=True)

    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.SET_NULL)
    profile_name = models.CharField(max_length=100, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    outcome = models.CharField(max_length=16, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    changes = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target_name} by {self.actor_name or 'anonymous'}"
