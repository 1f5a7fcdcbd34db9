"""What the broker last said about streams and their consumers, and the team's definitions of
streams."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Case, Exists, OuterRef, Value, When
from django.utils import timezone

from streams import definitions, sql, system_streams
from streams.definitions import StreamSync
from streams.models.jobs import Job
from streams.models.profiles import Profile
from streams.uint64 import UInt64Field


class StreamStatus(models.TextChoices):
    OK = "ok", "ok"
    MISSING = "missing", "missing"  # the cluster knows it, but no replica answered
    OFFLINE = "offline", "offline"
    GONE = "gone", "gone"  # a job found it deleted outside; the next listing drops it

Config = dict[str, Any]


def _timestamp(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):  # Go's zero time: no message yet
        return None
    return datetime.fromisoformat(text)


class StreamQuerySet(models.QuerySet["Stream"]):
    """Storing what the broker said about streams, for the jobs and the advisory listener
    (streams.outside) alike: thousands of rows at once, in plain SQL, with each stream's state
    against the team's definition."""

    ROW_FIELDS = [
        "status", "status_reason", "system_kind", "subjects", "subjects_text", "storage",
        "replicas", "retention", "messages", "bytes", "consumers", "first_seq", "first_ts",
        "last_seq", "last_ts", "info", "read_at", "sync", "drift",
    ]

    def row(self, profile_id: int, info: dict[str, Any], read_at: datetime,
            status: str = StreamStatus.OK, reason: str = "", *,
            definition: Config | None = None) -> dict[str, Any]:
        """A Stream row's column values (plain values: thousands are stored at once), with its
        state against its definition (None: unmanaged)."""
        config, state = info.get("config") or {}, info.get("state")
        sync, drift = definitions.state(definition, config)
        subjects = config.get("subjects") or []
        if state is None:  # an unreachable stream: its config is known, its state is not
            state = dict.fromkeys(("messages", "bytes", "consumer_count", "first_seq",
                                   "last_seq"))
        return {
            "profile_id": profile_id, "name": config["name"], "status": status,
            "status_reason": reason[:255],
            "system_kind": system_streams.system_kind(config["name"]),
            "subjects": subjects, "subjects_text": " ".join(subjects),
            "storage": config.get("storage", ""), "replicas": config.get("num_replicas") or 1,
            "retention": config.get("retention", ""), "messages": state.get("messages", 0),
            "bytes": state.get("bytes", 0), "consumers": state.get("consumer_count", 0),
            "first_seq": state.get("first_seq", 0), "first_ts": _timestamp(state.get("first_ts")),
            "last_seq": state.get("last_seq", 0), "last_ts": _timestamp(state.get("last_ts")),
            "info": info, "read_at": read_at, "sync": sync, "drift": drift,
        }

    def unreadable_row(self, profile_id: int, name: str, status: str, reason: str,
                       read_at: datetime,
                       sync: StreamSync = StreamSync.UNMANAGED) -> dict[str, Any]:
        """A stream the cluster names but cannot describe, or one known by its definition
        only. A defined one that cannot be read is not known to be in sync: it counts as
        drifted."""
        return {**self.row(profile_id, {"config": {"name": name}}, read_at, status, reason),
                "storage": "", "replicas": None, "retention": "", "info": None, "sync": sync}

    def missing_row(self, profile_id: int, name: str, read_at: datetime) -> dict[str, Any]:
        """A stream the team defined that is not on the broker: deleted outside the
        dashboard."""
        return self.unreadable_row(profile_id, name, StreamStatus.GONE,
                                   "not on the server: deleted outside the dashboard", read_at,
                                   StreamSync.MISSING)

    def store(self, rows: list[dict[str, Any]]) -> None:
        """Upsert Stream rows with one statement per batch: the ORM's bulk_create spends
        ~0.4 ms a row preparing values, and a 10,000-stream listing must be stored in well
        under a second."""
        statement = sql.insert(self.model, ["profile", "name", *self.ROW_FIELDS],
                               upsert_on=["profile", "name"])
        with transaction.atomic(), connection.cursor() as cursor:  # one commit, not one a row
            for start in range(0, len(rows), 1000):
                cursor.executemany(statement.sql, [statement.params(row)
                                                   for row in rows[start:start + 1000]])

    def store_one(self, profile_id: int, name: str, info: dict[str, Any]) -> dict[str, Any]:
        """The row of the one stream a job read, created or changed."""
        definition = (StreamDefinition.objects.filter(profile_id=profile_id, name=name)
                      .values_list("config", flat=True).first())
        row = self.row(profile_id, info, timezone.now(), definition=definition)
        self.store([row])
        return row

    def sync_states(self, profile_id: int,
                    names: list[str] | None = None) -> dict[str, tuple[str, Any]]:
        """Each stream's (sync, drift) as stored, before a read replaces them."""
        streams = self.filter(profile_id=profile_id)
        if names is not None:
            streams = streams.filter(name__in=names)
        return {name: (sync, drift) for name, sync, drift
                in streams.values_list("name", "sync", "drift")}

    def mark_gone(self, profile_id: int, name: str, reason: str) -> None:
        """The row says the stream is gone, and why: missing, when it is defined here, or until
        the next listing drops it."""
        is_defined = Exists(StreamDefinition.objects.filter(profile_id=OuterRef("profile_id"),
                                                            name=OuterRef("name")))
        self.filter(profile_id=profile_id, name=name).update(
            status=StreamStatus.GONE, status_reason=reason[:255],
            sync=Case(When(is_defined, then=Value(StreamSync.MISSING)),
                      default=Value(StreamSync.UNMANAGED)), drift=None)


class Stream(models.Model):
    """What the broker last said about one stream, so pages render from the database. Rows are
    replaced by each listing and by each job that reads or changes the stream."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="streams")
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=StreamStatus.choices,
                              default=StreamStatus.OK)
    status_reason = models.CharField(max_length=255, blank=True)
    system_kind = models.CharField(max_length=16, blank=True)  # "" for the user's own streams
    subjects = models.JSONField(default=list, blank=True)
    subjects_text = models.TextField(blank=True)  # space-joined, for filtering
    storage = models.CharField(max_length=16, blank=True)
    replicas = models.PositiveSmallIntegerField(null=True)
    retention = models.CharField(max_length=16, blank=True)
    messages = UInt64Field(null=True)
    bytes = UInt64Field(null=True)
    consumers = UInt64Field(null=True)
    first_seq = UInt64Field(null=True)
    first_ts = models.DateTimeField(null=True)
    last_seq = UInt64Field(null=True)
    last_ts = models.DateTimeField(null=True)
    info = models.JSONField(null=True, blank=True)  # the server's STREAM.INFO JSON as read
    read_at = models.DateTimeField()
    sync = models.CharField(max_length=16, choices=StreamSync.choices,
                            default=StreamSync.UNMANAGED)
    drift = models.JSONField(null=True, blank=True)  # {api_key: [defined, live]} when drifted

    objects = StreamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="stream_unique_per_profile")]

    def __str__(self) -> str:
        return self.name

    @property
    def config(self) -> dict[str, Any]:
        return (self.info or {}).get("config") or {}

    @property
    def system_label(self) -> str:
        return system_streams.SYSTEM_LABELS.get(self.system_kind, "")


class StreamDefinitionQuerySet(models.QuerySet["StreamDefinition"]):
    def configs(self, profile_id: int) -> dict[str, Config]:
        """A profile's definitions by stream name."""
        return dict(self.filter(profile_id=profile_id).values_list("name", "config"))

    def store(self, job: Job, configs: dict[str, Config]) -> None:
        """These streams' definitions become these configs (as the server answered them to
        `job`), in one upsert per thousand."""
        statement = sql.insert(self.model,
                               ["profile", "name", "config", "job", "updated_by", "updated_at"],
                               upsert_on=["profile", "name"])
        now = timezone.now()
        params = [statement.params({
            "profile_id": job.profile_id, "name": name, "config": config, "job_id": job.pk,
            "updated_by": job.actor_name, "updated_at": now,
        }) for name, config in configs.items()]
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(params), 1000):
                cursor.executemany(statement.sql, params[start:start + 1000])

    def forget(self, profile_id: int, name: str) -> tuple[int, dict[str, int]]:
        return self.filter(profile_id=profile_id, name=name).delete()


class StreamDefinition(models.Model):
    """The team's definition of a stream: the config the server answered with when the
    dashboard last created, changed or adopted it (streams.definitions compares it with the
    live one)."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE,
                                related_name="stream_definitions")
    name = models.CharField(max_length=255)
    config = models.JSONField()
    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StreamDefinitionQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "name"],
                                               name="stream_definition_unique_per_profile")]

    def __str__(self) -> str:
        return self.name


class ConsumerQuerySet(models.QuerySet["Consumer"]):
    """Storing what the broker said about a stream's consumers."""

    ROW_FIELDS = [
        "missing", "durable", "push", "filter_subjects", "ack_policy", "delivered_seq",
        "ack_floor_seq", "pending", "ack_pending", "redelivered", "waiting", "paused",
        "last_active", "info", "read_at",
    ]

    def row(self, profile_id: int, stream: str, info: dict[str, Any],
            read_at: datetime) -> dict[str, Any]:
        config = info.get("config") or {}
        delivered, ack_floor = info.get("delivered") or {}, info.get("ack_floor") or {}
        filters = config.get("filter_subjects") or (
            [config["filter_subject"]] if config.get("filter_subject") else [])
        return {
            "profile_id": profile_id, "stream_name": stream, "name": info["name"],
            "missing": False, "durable": bool(config.get("durable_name")),
            "push": bool(config.get("deliver_subject")), "filter_subjects": filters,
            "ack_policy": config.get("ack_policy", ""),
            "delivered_seq": delivered.get("stream_seq", 0),
            "ack_floor_seq": ack_floor.get("stream_seq", 0),
            "pending": info.get("num_pending", 0), "ack_pending": info.get("num_ack_pending", 0),
            "redelivered": info.get("num_redelivered", 0), "waiting": info.get("num_waiting", 0),
            "paused": bool(info.get("paused")),
            "last_active": _timestamp(delivered.get("last_active")), "info": info,
            "read_at": read_at,
        }

    def store(self, profile_id: int, stream: str, infos: list[dict[str, Any]],
              missing: list[str]) -> None:
        """A stream's consumers as just listed; those no longer listed are gone."""
        now = timezone.now()
        rows = [self.row(profile_id, stream, info, now) for info in infos]
        rows += [{**self.row(profile_id, stream, {"name": name}, now), "missing": True,
                  "delivered_seq": None, "ack_floor_seq": None, "pending": None,
                  "ack_pending": None, "redelivered": None, "waiting": None, "info": None}
                 for name in missing]
        with transaction.atomic():
            self._upsert(rows)
            self.filter(profile_id=profile_id, stream_name=stream, read_at__lt=now).delete()

    def store_one(self, profile_id: int, stream: str, info: dict[str, Any]) -> None:
        """The row of the one consumer a job created or changed."""
        self._upsert([self.row(profile_id, stream, info, timezone.now())])

    def forget(self, profile_id: int, stream: str, name: str) -> None:
        self.filter(profile_id=profile_id, stream_name=stream, name=name).delete()

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        statement = sql.insert(self.model,
                               ["profile", "stream_name", "name", *self.ROW_FIELDS],
                               upsert_on=["profile", "stream_name", "name"])
        with connection.cursor() as cursor:
            for start in range(0, len(rows), 1000):
                cursor.executemany(statement.sql, [statement.params(row)
                                                   for row in rows[start:start + 1000]])


class Consumer(models.Model):
    """What the broker last said about one consumer of a stream (read with the stream), so the
    stream's page renders its consumers from the database."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consumers")
    stream_name = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    missing = models.BooleanField(default=False)  # the cluster knows it, no replica answered
    durable = models.BooleanField(default=False)
    push = models.BooleanField(default=False)  # delivers to a subject; else pulled
    filter_subjects = models.JSONField(default=list, blank=True)
    ack_policy = models.CharField(max_length=16, blank=True)
    delivered_seq = UInt64Field(null=True)  # the stream sequence last delivered
    ack_floor_seq = UInt64Field(null=True)  # every message up to here is acknowledged
    pending = UInt64Field(null=True)  # matching messages not yet delivered: the lag
    ack_pending = UInt64Field(null=True)
    redelivered = UInt64Field(null=True)
    waiting = UInt64Field(null=True)  # pull requests waiting
    paused = models.BooleanField(default=False)
    last_active = models.DateTimeField(null=True)
    info = models.JSONField(null=True, blank=True)  # the server's CONSUMER.INFO JSON as read
    read_at = models.DateTimeField()

    objects = ConsumerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["profile", "stream_name", "name"],
                                               name="consumer_unique_per_stream")]

    def __str__(self) -> str:
        return self.name

    @property
    def config(self) -> dict[str, Any]:
        return (self.info or {}).get("config") or {}
