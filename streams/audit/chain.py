"""The one write path for audit entries, the hash chain that makes tampering evident, and the
snapshots and diffs entries carry.

Chain: entry n stores prev_hash (entry n-1's hash, or a checkpoint's, or GENESIS) and
hash = HMAC-SHA256(AUDIT_HMAC_KEY, canonical JSON of {entry: its stored content incl. seq,
prev: prev_hash}). The key lives outside the database, so whoever can edit rows cannot re-seal
them; seq makes removals and reorderings visible, prev_hash makes insertions visible.

Head: one row with the newest seq, hash and time, sealed by its own MAC. It always exists
(migrate and flush create it), triggers refuse to move it back or delete it, and a writer that
finds it missing or unsealed records that in the chain instead of quietly rebuilding it: so
entries cut from the end show, unless the head is replaced by an older sealed one (a restored
backup), which only a head kept outside the database (verify_audit --anchor) can reveal."""

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
# triggers refuse to delete audit rows or the head otherwise (migrations 0003 and 0005).
GATE_TABLE = "streams_audit_gate"
HEAD_TABLE = AuditChainHead._meta.db_table
# The action of the entry a writer adds when it found the head missing or unsealed.
HEAD_REBUILT = "audit.head_rebuilt"


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
        head = lock_head()
        _chain(head, events)
        _insert(events)
        _write_head(head)


def _chain(head: AuditChainHead, events: list[AuditEvent]) -> None:
    """Date, number and hash the entries after the head, and move the head past them."""
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


def _write_head(head: AuditChainHead) -> None:
    """Store the moved head with its new MAC: one UPDATE, as every append does this."""
    head.mac = head_mac(head.seq, head.hash, head.at)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {HEAD_TABLE} SET seq = %s, hash = %s, at = %s, mac = %s WHERE id = 1",
            [head.seq, head.hash, connection.ops.adapt_datetimefield_value(head.at), head.mac],
        )


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


def lock_head() -> AuditChainHead:
    """The chain head, locked until the transaction ends: concurrent writers queue here (a row
    lock on PostgreSQL; on SQLite the IMMEDIATE transaction already holds the write lock).

    A head that is missing or fails its MAC is what someone who cut entries from the end would
    leave: rebuilding it quietly and sealing it with the next append would hide the cut. The
    writer still continues, so the app keeps working, but first adds an entry saying so, which
    integrity.verify() reports."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash, at, mac FROM {HEAD_TABLE} WHERE id = 1{lock}")
        row = cursor.fetchone()
    if row is not None:
        seq, last_hash, at, mac = row
        # SQLite hands back the stored UTC time without its zone.
        if at is not None and timezone.is_naive(at):
            at = at.replace(tzinfo=UTC)
        head = AuditChainHead(pk=1, seq=seq, hash=last_hash, at=at, mac=mac)
        if matches(head_mac(seq, last_hash, at), mac):
            return head
        problem = "the chain head did not match its MAC (altered, or AUDIT_HMAC_KEY changed)"
    else:
        # Continue from what is there (the walk in integrity.verify() judges it).
        newest = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "at").first()
        checkpoint = AuditCheckpoint.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, last_hash, at = newest or (*(checkpoint or (0, GENESIS)), None)
        head, created = AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"seq": seq, "hash": last_hash, "at": at,
                            "mac": head_mac(seq, last_hash, at)},
        )
        if not created:  # another writer found it missing a moment ago and recorded that
            return head
        problem = "the chain head was missing (the log was wiped or its head removed)"
    marker = entry(HEAD_REBUILT, Context(), target_type="audit", outcome="failed",
                   actor_name="memphisadmin", before={"seq": head.seq, "hash": head.hash},
                   message=f"{problem}; the chain continued from #{head.seq}")
    _chain(head, [marker])
    _insert([marker])
    _write_head(head)
    return head


def start_chain(using: str = DEFAULT_DB_ALIAS) -> None:
    """The head of an empty log, as migrate leaves it. flush calls this after emptying the
    tables: a head that always exists lets integrity.verify() call a missing one a removal."""
    AuditChainHead.objects.using(using).create(pk=1, seq=0, hash=GENESIS, at=None,
                                               mac=head_mac(0, GENESIS, None))


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


def head_mac(seq: int, last_hash: str, at: datetime | None) -> str:
    return _mac({"head": {"seq": seq, "hash": last_hash, "at": at}})


def matches(expected: str, stored: str) -> bool:
    # Bytes: compare_digest raises on a str with non-ASCII characters, which a forger may store.
    return hmac.compare_digest(expected.encode(), stored.encode())


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
