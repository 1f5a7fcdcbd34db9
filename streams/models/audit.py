"""The audit log's rows and its one write path (streams.audit says how the chain works). Below
the jobs: a Job writes its entries here, so an entry names its job by the string "streams.Job"
rather than importing it."""

from __future__ import annotations

from datetime import UTC
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from streams import metrics, policy, seal, sql
from streams.models.profiles import Profile


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit entry through the ORM."""


class Acting(Protocol):
    """Who acts and from where, as an entry copies it: a streams.audit.Context, or a Job (whoever
    requested it, for the entries its end writes)."""

    actor: Any
    ip: str | None
    user_agent: str
    request_id: str


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    """The one write path of the audit log: entry() makes an entry, append() dates, numbers and
    chains entries onto the log (streams.audit.chain says how the chain and its head work).
    Entries are append-only: the ORM refuses to change or remove them in bulk too."""

    def seen_by(self, user: Any) -> AuditQuerySet:
        """The entries `user` sees: those of their teams' connections and their own account's;
        a superuser sees every one."""
        if getattr(user, "is_superuser", False):
            return self
        return self.filter(Q(profile__in=policy.profiles(user)) | Q(actor=user))

    def entry(
        self,
        action: str,
        context: Acting | None,
        *,
        target_type: str = "",
        target_name: str = "",
        profile: Profile | None = None,
        job: models.Model | None = None,  # a Job: streams.models.jobs imports this module
        outcome: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        message: str = "",
        actor_name: str = "",
    ) -> AuditEvent:
        """An entry not yet in the log: append() dates it and chains it. No context: nobody's
        (the log's own entries)."""
        actor = context.actor if context is not None else None
        ip = context.ip if context is not None else None
        return self.model(
            at=None,
            actor=actor,
            actor_name=(actor.get_username() if actor is not None else actor_name)[:150],
            ip=self.model._meta.get_field("ip").get_prep_value(ip) if ip else None,
            user_agent=context.user_agent[:300] if context is not None else "",
            request_id=context.request_id[:32] if context is not None else "",
            action=action,
            target_type=target_type,
            target_name=target_name[:255],
            profile=profile,
            # A job's entries name its profile even after the profile was deleted.
            profile_name=profile.name if profile is not None else job.profile_name if job else "",
            job=job,
            outcome=outcome,
            before=before,
            after=after,
            changes=changes,
            message=message,
        )

    def record(self, action: str, context: Acting | None, **fields: Any) -> AuditEvent:
        """Write one entry now (the fields are entry()'s)."""
        event = self.entry(action, context, **fields)
        self.append([event])
        return event

    def append(self, events: list[AuditEvent]) -> None:
        """Chain entries onto the log with one INSERT. Entries from entry() are dated now;
        entries that carry their own time (history brought over from elsewhere, benchmark
        data) must not be earlier than the one before them. Inside a caller's transaction the
        entries commit or roll back with it; a savepoint is taken only where append() may
        refuse (entries with their own time), so that a refusal leaves the caller's
        transaction usable."""
        if not events:
            return
        with transaction.atomic(savepoint=any(event.at is not None for event in events)):
            head = self.lock_head()
            self._link(head, events)
            self._insert_entries(events)
            self._write_head(head)
            transaction.on_commit(partial(_count, [event.action for event in events]))

    def _link(self, head: AuditChainHead, events: list[AuditEvent]) -> None:
        """Date, number and hash the entries after the head, and move the head past them."""
        now = timezone.now()
        for event in events:
            if event.at is None:
                # Never earlier than the entry before, even from a host whose clock lags: time
                # order is chain order, which lets date filters become seq ranges (audit views).
                event.at = max(now, head.at) if head.at else now
            elif head.at and event.at < head.at:
                raise ValueError(f"entry dated {event.at} is earlier than the one before it")
            event.seq, event.prev_hash = head.seq + 1, head.hash
            event.before, event.after = seal.as_stored(event.before), seal.as_stored(event.after)
            event.changes = seal.as_stored(event.changes)
            event.hash = seal.entry_hash(seal.chained_content(event), head.hash)
            head.seq, head.hash, head.at = event.seq, event.hash, event.at

    def _write_head(self, head: AuditChainHead) -> None:
        """Store the moved head with its new MAC: one UPDATE, as every append does this."""
        head.mac = seal.head_mac(head.seq, head.hash, head.at)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {AuditChainHead._meta.db_table} SET seq = %s, hash = %s, at = %s, "
                "mac = %s WHERE id = 1",
                [head.seq, head.hash, connection.ops.adapt_datetimefield_value(head.at),
                 head.mac],
            )

    def _insert_entries(self, events: list[AuditEvent]) -> None:
        """One INSERT for all the entries, in plain SQL: every job writes entries twice, and
        the ORM's preparation of a 20-column row costs several times the database's work."""
        names = [field.name for field in self.model._meta.concrete_fields
                 if not field.primary_key]
        statement = sql.insert(self.model, names, rows=len(events), returning_pk=True)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, [value for event in events
                                           for value in statement.params(vars(event))])
            for event, (pk,) in zip(events, cursor.fetchall(), strict=True):
                event.pk = pk
                event._state.adding, event._state.db = False, connection.alias

    def lock_head(self) -> AuditChainHead:
        """The chain head, locked until the transaction ends: concurrent writers queue here (a
        row lock on PostgreSQL; on SQLite the IMMEDIATE transaction already holds the write
        lock).

        A head that is missing or fails its MAC is what someone who cut entries from the end
        would leave: rebuilding it quietly and sealing it with the next append would hide the
        cut. The writer still continues, so the app keeps working, but first adds an entry
        saying so, which integrity.verify() reports."""
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT seq, hash, at, mac FROM {AuditChainHead._meta.db_table} "
                           f"WHERE id = 1{lock}")
            row = cursor.fetchone()
        if row is not None:
            seq, last_hash, at, mac = row
            # SQLite hands back the stored UTC time without its zone.
            if at is not None and timezone.is_naive(at):
                at = at.replace(tzinfo=UTC)
            head = AuditChainHead(pk=1, seq=seq, hash=last_hash, at=at, mac=mac)
            if seal.matches(seal.head_mac(seq, last_hash, at), mac):
                return head
            problem = "the chain head did not match its MAC (altered, or AUDIT_HMAC_KEY changed)"
        else:
            # Continue from what is there (the walk in integrity.verify() judges it).
            newest = self.model.objects.order_by("-seq").values_list("seq", "hash", "at").first()
            checkpoint = AuditCheckpoint.objects.order_by("-seq").values_list("seq",
                                                                              "hash").first()
            seq, last_hash, at = newest or (*(checkpoint or (0, seal.GENESIS)), None)
            head, created = AuditChainHead.objects.select_for_update().get_or_create(
                pk=1, defaults={"seq": seq, "hash": last_hash, "at": at,
                                "mac": seal.head_mac(seq, last_hash, at)},
            )
            if not created:  # another writer found it missing a moment ago and recorded that
                return head
            problem = "the chain head was missing (the log was wiped or its head removed)"
        marker = self.entry(self.model.HEAD_REBUILT, None, target_type="audit", outcome="failed",
                            actor_name="memphisadmin",
                            before={"seq": head.seq, "hash": head.hash},
                            message=f"{problem}; the chain continued from #{head.seq}")
        self._link(head, [marker])
        self._insert_entries([marker])
        self._write_head(head)
        return head

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted (use manage.py prune_audit)")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries cannot be changed")


class AuditEvent(models.Model):
    """Append-only record of who did what, when, to which target, and how it ended. Names are
    copied, not only referenced, so entries outlive what they describe: the foreign keys are
    plain ids without a database constraint (deleting a user, profile or job must not rewrite
    an entry). `seq` and `hash` chain the entries together (see streams.audit)."""

    # The action of the entry a writer adds when it found the head missing or unsealed.
    HEAD_REBUILT = "audit.head_rebuilt"

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING,
                              db_constraint=False)
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=32, blank=True)

    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.DO_NOTHING,
                                db_constraint=False)
    profile_name = models.CharField(max_length=100, blank=True)
    job = models.ForeignKey("streams.Job", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False)
    outcome = models.CharField(max_length=16, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    changes = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)

    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        # Every review filter is an equality on one of these plus "newest first": each index
        # ends in seq so a page is one index range scan, however large the table.
        indexes = [
            models.Index(fields=["at", "seq"], name="audit_at_seq"),
            models.Index(fields=["actor_name", "seq"], name="audit_actor_seq"),
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["target_type", "target_name", "seq"], name="audit_target_seq"),
            models.Index(fields=["profile_name", "seq"], name="audit_profile_name_seq"),
            models.Index(fields=["profile", "seq"], name="audit_profile_seq"),
            models.Index(fields=["outcome", "seq"], name="audit_outcome_seq"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_name} by {self.actor_name or 'anonymous'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted (use manage.py prune_audit)")


class AuditChainHead(models.Model):
    """The newest entry's seq, hash and time, in a single row that always exists (migrate and
    flush create it at seq 0). Writers lock it to take turns, so two entries never get the same
    predecessor; verification compares it with the newest entry to notice entries removed from
    the end. `mac` seals it with the chain's key, and database triggers refuse to move it back
    or delete it, so the head cannot be rewound to match a shortened log."""

    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    at = models.DateTimeField(null=True)
    mac = models.CharField(max_length=64)


class AuditCheckpoint(models.Model):
    """Left behind by prune_audit: the seq and hash of the last entry it removed, signed, so the
    chain can be verified from the first remaining entry. Append-only like the entries."""

    seq = models.PositiveBigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    pruned_before = models.DateTimeField()
    removed = models.PositiveBigIntegerField()
    at = models.DateTimeField(default=timezone.now)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"


def _count(actions: list[str]) -> None:
    for action in actions:
        metrics.AUDIT_ENTRIES.labels(action).inc()
