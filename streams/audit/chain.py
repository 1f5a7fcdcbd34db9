"""The hash chain that makes tampering evident: how it works (the write path that builds it is
AuditEvent.objects, with entry, record and append, in streams.models, sealed by streams.seal),
who acts (Context), the gate prune and flush pass, and the snapshots and diffs entries carry.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest

from streams.models import AuditChainHead, AuditEvent, Job, Profile
from streams.seal import GENESIS, head_mac

SECRET_CHANGED = "changed"
# Rows exist in this table only inside a transaction that prunes or flushes; the database
# triggers refuse to delete audit rows or the head otherwise (migrations 0003 and 0005).
GATE_TABLE = "streams_audit_gate"
# The action of the entry a writer adds when it found the head missing or unsealed.
HEAD_REBUILT = AuditEvent.HEAD_REBUILT


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


def start_chain(using: str = DEFAULT_DB_ALIAS) -> None:
    """The head of an empty log, as migrate leaves it. flush calls this after emptying the
    tables: a head that always exists lets integrity.verify() call a missing one a removal."""
    AuditChainHead.objects.using(using).create(pk=1, seq=0, hash=GENESIS, at=None,
                                               mac=head_mac(0, GENESIS, None))

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
