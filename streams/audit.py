"""The one write path for audit entries, the hash chain that makes tampering evident, and the
snapshots and diffs entries carry.

Chain: entry n stores prev_hash (entry n-1's hash, or a checkpoint's, or GENESIS) and
hash = HMAC-SHA256(AUDIT_HMAC_KEY, canonical JSON of {entry: its stored content incl. seq,
prev: prev_hash}). The key lives outside the database, so whoever can edit rows cannot re-seal
them; seq makes removals and reorderings visible, prev_hash makes insertions visible."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.http import HttpRequest
from django.utils import timezone

from streams import sql
from streams.models import AuditChainHead, AuditCheckpoint, AuditEvent, Job, Profile

SECRET_CHANGED = "changed"
GENESIS = "0" * 64
# The stored content an entry's hash covers: every column but id and the hashes themselves.
CHAINED_FIELDS = (
    "seq", "at", "actor_id", "actor_name", "ip", "user_agent", "request_id", "action",
    "target_type", "target_name", "profile_id", "profile_name", "job_id", "outcome", "before",
    "after", "changes", "message",
)
# Rows exist in this table only inside a transaction that prunes or flushes; the database
# triggers refuse to delete audit rows otherwise (see migration 0002_audit_chain).
GATE_TABLE = "streams_audit_gate"
HEAD_TABLE = AuditChainHead._meta.db_table


@dataclass(frozen=True)
class Context:
    """Who is acting and from where; copied into every entry."""

    actor: Any = None
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Context:
        user = getattr(request, "user", None)
        return cls(
            actor=user if user is not None and user.is_authenticated else None,
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=getattr(request, "request_id", ""),
        )

    @classmethod
    def of_job(cls, job: Job) -> Context:
        """The context of whoever requested the job, for entries the worker writes."""
        return cls(job.actor, job.ip, job.user_agent, job.request_id)


def command_actor() -> str:
    """How entries written by a management command name their actor."""
    return f"manage.py ({getpass.getuser()})"


def entry(
    action: str,
    context: Context,
    *,
    target_type: str = "",
    target_name: str = "",
    profile: Profile | None = None,
    job: Job | None = None,
    outcome: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    message: str = "",
    actor_name: str = "",
) -> AuditEvent:
    """An entry not yet in the log: append() dates it and chains it."""
    actor = context.actor
    ip_field = AuditEvent._meta.get_field("ip")
    return AuditEvent(
        at=None,
        actor=actor,
        actor_name=(actor.get_username() if actor is not None else actor_name)[:150],
        ip=ip_field.get_prep_value(context.ip) if context.ip else None,
        user_agent=context.user_agent[:300],
        request_id=context.request_id[:32],
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


def record(action: str, context: Context, **fields: Any) -> AuditEvent:
    """Write one entry now (the fields are entry()'s)."""
    event = entry(action, context, **fields)
    append([event])
    return event


def append(events: list[AuditEvent]) -> None:
    """Chain entries onto the log with one INSERT. Entries from entry() are dated now; entries
    that carry their own time (history brought over from elsewhere, benchmark data) must not be
    earlier than the one before them. Inside a caller's transaction the entries commit or roll
    back with it; a savepoint is taken only where append() may refuse (entries with their own
    time), so that a refusal leaves the caller's transaction usable."""
    if not events:
        return
    with transaction.atomic(savepoint=any(event.at is not None for event in events)):
        head = _lock_head()
        now = timezone.now()
        for event in events:
            if event.at is None:
                # Never earlier than the entry before, even from a host whose clock lags: time
                # order is chain order, which lets date filters become seq ranges (audit_views).
                event.at = max(now, head.at) if head.at else now
            elif head.at and event.at < head.at:
                raise ValueError(f"entry dated {event.at} is earlier than the one before it")
            event.seq, event.prev_hash = head.seq + 1, head.hash
            event.before, event.after = _json(event.before), _json(event.after)
            event.changes = _json(event.changes)
            event.hash = entry_hash(chained_content(event), head.hash)
            head.seq, head.hash, head.at = event.seq, event.hash, event.at
        _insert(events)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {HEAD_TABLE} SET seq = %s, hash = %s, at = %s WHERE id = 1",
                           [head.seq, head.hash, connection.ops.adapt_datetimefield_value(head.at)])


def _insert(events: list[AuditEvent]) -> None:
    """One INSERT for all the entries, in plain SQL: every job writes entries twice, and the
    ORM's preparation of a 20-column row costs several times the database's work."""
    names = [field.name for field in AuditEvent._meta.concrete_fields if not field.primary_key]
    statement = sql.insert(AuditEvent, names, rows=len(events), returning_pk=True)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, [value for event in events
                                       for value in statement.params(vars(event))])
        for event, (pk,) in zip(events, cursor.fetchall(), strict=True):
            event.pk = pk
            event._state.adding, event._state.db = False, connection.alias


def _lock_head() -> AuditChainHead:
    """The chain head, locked until the transaction ends: concurrent writers queue here (a row
    lock on PostgreSQL; on SQLite the IMMEDIATE transaction already holds the write lock)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash, at FROM {HEAD_TABLE} WHERE id = 1{lock}")
        row = cursor.fetchone()
    if row is not None:
        seq, last_hash, at = row
        # SQLite hands back the stored UTC time without its zone.
        if at is not None and timezone.is_naive(at):
            at = at.replace(tzinfo=UTC)
        return AuditChainHead(pk=1, seq=seq, hash=last_hash, at=at)
    # First entry, or the table was flushed: continue from what is there.
    newest = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "at").first()
    checkpoint = AuditCheckpoint.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, last_hash, at = newest or (*(checkpoint or (0, GENESIS)), None)
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        pk=1, defaults={"seq": seq, "hash": last_hash, "at": at}
    )
    return head


def _json(value: Any) -> Any:
    """The value as it will read back from a JSON column, so the hash computed now matches the
    one computed from the stored row (tuples become lists, keys strings, 2.0 stays 2.0)."""
    return None if value is None else json.loads(json.dumps(value))


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, float) and value.is_integer():
        return int(value)  # PostgreSQL's jsonb prints 1e+16 back as 10000000000000000
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def chained_content(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in CHAINED_FIELDS}


def _mac(payload: dict[str, Any]) -> str:
    text = json.dumps(_canonical(payload), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    key = settings.AUDIT_HMAC_KEY.encode()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def entry_hash(content: dict[str, Any], prev_hash: str) -> str:
    return _mac({"entry": content, "prev": prev_hash})


def checkpoint_mac(seq: int, last_hash: str, pruned_before: datetime, removed: int) -> str:
    return _mac({"checkpoint": {"seq": seq, "hash": last_hash, "before": pruned_before,
                                "removed": removed}})


@contextmanager
def deletion_gate(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Lets this transaction, and nothing else, delete audit rows past the database triggers.
    The gate row never commits: it is removed before the end, or rolled back with the rest."""
    connection = connections[using]
    guarded = connection.vendor in {"sqlite", "postgresql"}
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if guarded:
            cursor.execute(f"INSERT INTO {GATE_TABLE} (open) VALUES (%s)", [True])
        yield
        if guarded:
            cursor.execute(f"DELETE FROM {GATE_TABLE}")


# Verification and pruning ----------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    checked: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    problem: str = ""
    problem_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


def verify(chunk: int = 5000) -> Verification:
    """Walk the chain from the latest checkpoint (or the start) to the head and report the first
    entry that was altered, inserted or removed."""
    head = AuditChainHead.objects.filter(pk=1).first()
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    expected_seq, expected_prev = 1, GENESIS
    if checkpoint is not None:
        mac = checkpoint_mac(checkpoint.seq, checkpoint.hash, checkpoint.pruned_before,
                             checkpoint.removed)
        if not hmac.compare_digest(mac, checkpoint.mac):
            return Verification(0, None, None, "", f"the checkpoint at #{checkpoint.seq} was "
                                "altered or forged", checkpoint.seq)
        expected_seq, expected_prev = checkpoint.seq + 1, checkpoint.hash
    first_seq = expected_seq
    # Entries written after the head was read are left for the next run.
    limit = head.seq if head is not None else 0
    checked = 0
    columns = (*CHAINED_FIELDS, "prev_hash", "hash")
    last_seen = -1
    while True:
        rows = list(AuditEvent.objects.filter(seq__gt=last_seen, seq__lte=limit)
                    .order_by("seq").values_list(*columns)[:chunk])
        for row in rows:
            content = dict(zip(CHAINED_FIELDS, row[:-2], strict=True))
            seq, prev_hash, stored_hash = content["seq"], row[-2], row[-1]
            if seq < expected_seq:
                return Verification(checked, first_seq, seq, "", f"entry #{seq} lies before the "
                                    f"checkpoint at #{expected_seq - 1}: it was inserted", seq)
            if seq > expected_seq:
                return Verification(checked, first_seq, seq, "", f"entry #{expected_seq} is "
                                    "missing: it was removed", expected_seq)
            if not hmac.compare_digest(entry_hash(content, prev_hash), stored_hash):
                return Verification(checked, first_seq, seq, "", f"entry #{seq} does not match "
                                    "its hash: it was altered (or inserted without the key)", seq)
            if prev_hash != expected_prev:
                return Verification(checked, first_seq, seq, "", f"entry #{seq} does not follow "
                                    f"entry #{seq - 1}: an entry was inserted, removed or "
                                    "reordered here", seq)
            expected_seq, expected_prev = seq + 1, stored_hash
            checked += 1
        if len(rows) < chunk:
            break
        last_seen = rows[-1][0]
    last = expected_seq - 1
    if head is None:
        if AuditEvent.objects.exists():
            return Verification(checked, first_seq, last, "", "the chain head is missing")
        return Verification(0, None, None, GENESIS)
    if last != head.seq or expected_prev != head.hash:
        return Verification(checked, first_seq, last, "", f"entries #{last + 1} to #{head.seq} "
                            "are missing: removed from the end", last + 1)
    # record() moves the head in the transaction that adds the entry: nothing lies beyond it.
    current = AuditChainHead.objects.values_list("seq", flat=True).get(pk=1)
    stray = (AuditEvent.objects.filter(seq__gt=current).order_by("seq")
             .values_list("seq", flat=True).first())
    if stray is not None:
        return Verification(checked, first_seq, last, "", f"entry #{stray} lies beyond the "
                            "chain head: it was inserted", stray)
    return Verification(checked, first_seq, last, head.hash)


@dataclass(frozen=True)
class Pruned:
    removed: int
    up_to_seq: int | None


def prune(before: datetime, context: Context, actor_name: str = "") -> Pruned:
    """Remove the entries older than `before` (a prefix of the chain: everything ahead of the
    oldest entry that is not older) and leave a signed checkpoint where they ended."""
    with deletion_gate():
        _lock_head()
        first_kept = (AuditEvent.objects.filter(at__gte=before).order_by("seq")
                      .values_list("seq", flat=True).first())
        doomed = AuditEvent.objects.all()
        if first_kept is not None:
            doomed = doomed.filter(seq__lt=first_kept)
        last = doomed.order_by("-seq").values_list("seq", "hash").first()
        pruned = Pruned(0, None)
        if last is not None:
            seq, last_hash = last
            removed = doomed.count()
            AuditCheckpoint.objects.create(
                seq=seq, hash=last_hash, pruned_before=before, removed=removed,
                mac=checkpoint_mac(seq, last_hash, before, removed),
            )
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                # The ORM refuses to delete entries; this statement is the one sanctioned way.
                cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE seq <= %s", [seq])
            pruned = Pruned(removed, seq)
        record("audit.pruned", context, target_type="audit", outcome="succeeded",
               actor_name=actor_name, after={"before": before.isoformat(),
                                             "removed": pruned.removed,
                                             "up_to_seq": pruned.up_to_seq},
               message=f"removed {pruned.removed} entries older than {before.isoformat()}")
    return pruned


# Snapshots and diffs ---------------------------------------------------------------------------


def profile_snapshot(profile: Profile) -> dict[str, Any]:
    """The profile's settings with each secret reduced to whether it is set."""
    snapshot: dict[str, Any] = {}
    for field in Profile._meta.concrete_fields:
        if field.name in {"id", "created_at", "updated_at"} or field.name.startswith("last_"):
            continue
        value = getattr(profile, field.attname)
        snapshot[field.name] = bool(value) if field.name in Profile.SECRET_FIELDS else value
    return snapshot


def diff(
    before: dict[str, Any], after: dict[str, Any], secrets_changed: set[str] = frozenset()
) -> dict[str, Any]:
    """Field by field: {field: [old, new]}; a secret appears only as "changed"."""
    changes: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        if key in secrets_changed:
            changes[key] = SECRET_CHANGED
        elif before.get(key) != after.get(key):
            changes[key] = [before.get(key), after.get(key)]
    return dict(sorted(changes.items()))
