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
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest

from streams.models import AuditChainHead, AuditCheckpoint, AuditEvent, Job, Profile
from streams.seal import (
    CHAINED_FIELDS,
    GENESIS,
    checkpoint_mac,
    entry_hash,
    head_mac,
)
from streams.seal import matches as _matches

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


def entry(action: str, context: Context, **fields: Any) -> AuditEvent:
    """An entry not yet in the log (AuditEvent.objects.entry)."""
    return AuditEvent.objects.entry(action, context, **fields)


def record(action: str, context: Context, **fields: Any) -> AuditEvent:
    """Write one entry now (AuditEvent.objects.record)."""
    return AuditEvent.objects.record(action, context, **fields)


def append(events: list[AuditEvent]) -> None:
    """Chain entries onto the log (AuditEvent.objects.append)."""
    AuditEvent.objects.append(events)


def _lock_head() -> AuditChainHead:
    return AuditEvent.objects.lock_head()


def start_chain(using: str = DEFAULT_DB_ALIAS) -> None:
    """The head of an empty log, as migrate leaves it. flush calls this after emptying the
    tables: a head that always exists lets verify() call a missing one a removal."""
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


# Verification and pruning ----------------------------------------------------------------------


@dataclass(frozen=True)
class HeadRef:
    """A chain head as kept outside the database (an anchor file, a log line): `SEQ:HASH`."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> HeadRef:
        match = re.fullmatch(r"(\d+):([0-9a-f]{64})", text.strip(), re.ASCII)
        if match is None:
            raise ValueError(f"not a chain head (SEQ:HASH, the hash in 64 hex digits): {text!r}")
        return cls(int(match[1]), match[2])

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class Verification:
    checked: int
    first_seq: int | None
    last_seq: int | None
    head: HeadRef | None
    problem: str = ""
    problem_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problem


def verify(chunk: int = 5000, reaches: Sequence[HeadRef] = ()) -> Verification:
    """Walk the chain from the latest checkpoint (or the start) to the head and report the first
    entry that was altered, inserted or removed, or a head that was altered or removed. Each of
    `reaches` (heads verified earlier, kept outside the database) must still be in the chain:
    that is what shows a log cut short together with its head, or restored from an older copy."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return Verification(0, None, None, None, "the chain head is missing: the log was wiped "
                            "or its head removed")
    if not _matches(head_mac(head.seq, head.hash, head.at), head.mac):
        return Verification(0, None, None, None, f"the chain head was altered: #{head.seq} does "
                            "not match its MAC", head.seq)
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    expected_seq, expected_prev = 1, GENESIS
    if checkpoint is not None:
        mac = checkpoint_mac(checkpoint.seq, checkpoint.hash, checkpoint.pruned_before,
                             checkpoint.removed)
        if not _matches(mac, checkpoint.mac):
            return Verification(0, None, None, None, f"the checkpoint at #{checkpoint.seq} was "
                                "altered or forged", checkpoint.seq)
        expected_seq, expected_prev = checkpoint.seq + 1, checkpoint.hash
    first_seq = expected_seq
    checked = 0
    columns = (*CHAINED_FIELDS, "prev_hash", "hash")
    last_seen = -1
    while True:
        # Entries written after the head was read are left for the next run.
        rows = list(AuditEvent.objects.filter(seq__gt=last_seen, seq__lte=head.seq)
                    .order_by("seq").values_list(*columns)[:chunk])
        for row in rows:
            content = dict(zip(CHAINED_FIELDS, row[:-2], strict=True))
            seq, prev_hash, stored_hash = content["seq"], row[-2], row[-1]
            if seq < expected_seq:
                return Verification(checked, first_seq, seq, None, f"entry #{seq} lies before "
                                    f"the checkpoint at #{expected_seq - 1}: it was inserted", seq)
            if seq > expected_seq:
                return Verification(checked, first_seq, seq, None, f"entry #{expected_seq} is "
                                    "missing: it was removed", expected_seq)
            if not _matches(entry_hash(content, prev_hash), stored_hash):
                return Verification(checked, first_seq, seq, None, f"entry #{seq} does not match "
                                    "its hash: it was altered (or inserted without the key)", seq)
            if prev_hash != expected_prev:
                return Verification(checked, first_seq, seq, None, f"entry #{seq} does not "
                                    f"follow entry #{seq - 1}: an entry was inserted, removed or "
                                    "reordered here", seq)
            if content["action"] == HEAD_REBUILT:  # sealed like any entry: the app wrote it
                return Verification(checked, first_seq, seq, None, f"entry #{seq} records that "
                                    f"{content['message']}", seq)
            expected_seq, expected_prev = seq + 1, stored_hash
            checked += 1
        if len(rows) < chunk:
            break
        last_seen = rows[-1][0]
    last = expected_seq - 1
    span = (first_seq, last) if checked else (None, None)
    if last != head.seq or expected_prev != head.hash:
        return Verification(checked, *span, None, f"entries #{last + 1} to #{head.seq} are "
                            "missing: removed from the end", last + 1)
    # record() moves the head in the transaction that adds the entry: nothing lies beyond it.
    current = AuditChainHead.objects.filter(pk=1).values_list("seq", flat=True).first()
    stray = (AuditEvent.objects.filter(seq__gt=current if current is not None else head.seq)
             .order_by("seq").values_list("seq", flat=True).first())
    if stray is not None:
        return Verification(checked, *span, None, f"entry #{stray} lies beyond the chain head: "
                            "it was inserted", stray)
    for earlier in reaches:
        if not _reaches(earlier, head, checkpoint):
            return Verification(checked, *span, None, "the log no longer reaches the last "
                                f"verified head #{earlier.seq}: entries were removed from the "
                                "end or the database was restored from an older copy",
                                earlier.seq)
    return Verification(checked, *span, HeadRef(head.seq, head.hash))


def _reaches(earlier: HeadRef, head: AuditChainHead, checkpoint: AuditCheckpoint | None) -> bool:
    """Whether the verified chain (from `checkpoint` to `head`) contains an earlier head."""
    if earlier.seq > head.seq:
        return False
    if checkpoint is not None and checkpoint.seq >= earlier.seq:
        # Pruned since: a checkpoint keeps the hash of the last entry it removed, no other.
        return checkpoint.seq > earlier.seq or checkpoint.hash == earlier.hash
    if earlier.seq == 0:
        return earlier.hash == GENESIS
    stored = AuditEvent.objects.filter(seq=earlier.seq).values_list("hash", flat=True).first()
    return stored == earlier.hash


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
