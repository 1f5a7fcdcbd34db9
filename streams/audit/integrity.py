"""The audit log's integrity: verify walks the hash chain (from the latest prune checkpoint to
the sealed head) and reports the first entry altered, inserted or removed, a head altered or
removed, or a head kept outside the database that the log no longer reaches; prune removes the
oldest entries and leaves a signed checkpoint where they ended, so verify still passes.

What it checks is what `chain` writes (its docstring says how entries and the head are
sealed). The operations commands verify_audit and prune_audit call these."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections

from streams.audit.chain import HEAD_REBUILT, Context, deletion_gate
from streams.models import AuditChainHead, AuditCheckpoint, AuditEvent
from streams.seal import CHAINED_FIELDS, GENESIS, checkpoint_mac, entry_hash, head_mac, matches


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


# Told (done, total) as long work goes on: a terminal's line (streams.progress.TerminalLine).
Progress = Callable[[int, int], None]


def verify(chunk: int = 5000, reaches: Sequence[HeadRef] = (),
           progress: Progress | None = None) -> Verification:
    """Walk the chain from the latest checkpoint (or the start) to the head and report the first
    entry that was altered, inserted or removed, or a head that was altered or removed. Each of
    `reaches` (heads verified earlier, kept outside the database) must still be in the chain:
    that is what shows a log cut short together with its head, or restored from an older copy.
    `progress` hears how many entries were checked after each chunk, of those the head says
    there are."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        return Verification(0, None, None, None, "the chain head is missing: the log was wiped "
                            "or its head removed")
    if not matches(head_mac(head.seq, head.hash, head.at), head.mac):
        return Verification(0, None, None, None, f"the chain head was altered: #{head.seq} does "
                            "not match its MAC", head.seq)
    checkpoint = AuditCheckpoint.objects.order_by("-seq").first()
    expected_seq, expected_prev = 1, GENESIS
    if checkpoint is not None:
        mac = checkpoint_mac(checkpoint.seq, checkpoint.hash, checkpoint.pruned_before,
                             checkpoint.removed)
        if not matches(mac, checkpoint.mac):
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
            if not matches(entry_hash(content, prev_hash), stored_hash):
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
        if progress is not None and rows:
            progress(checked, head.seq - first_seq + 1)
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


def prune(before: datetime, context: Context, actor_name: str = "", chunk: int = 20_000,
          progress: Progress | None = None) -> Pruned:
    """Remove the entries older than `before` (a prefix of the chain: everything ahead of the
    oldest entry that is not older) and leave a signed checkpoint where they ended. They go
    `chunk` at a time, in one transaction, and `progress` hears how many are gone after each."""
    with deletion_gate():
        AuditEvent.objects.lock_head()
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
            first = doomed.order_by("seq").values_list("seq", flat=True).first()
            gone = 0
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                # The ORM refuses to delete entries; this statement is the one sanctioned way.
                for upper in range(first + chunk - 1, seq + chunk, chunk):
                    cursor.execute(f"DELETE FROM {AuditEvent._meta.db_table} WHERE seq <= %s",
                                   [min(upper, seq)])
                    gone += cursor.rowcount
                    if progress is not None:
                        progress(gone, removed)
            pruned = Pruned(removed, seq)
        AuditEvent.objects.record("audit.pruned", context, target_type="audit",
                                  outcome="succeeded", actor_name=actor_name,
                                  after={"before": before.isoformat(), "removed": pruned.removed,
                                         "up_to_seq": pruned.up_to_seq},
                                  message=f"removed {pruned.removed} entries older than "
                                          f"{before.isoformat()}")
    return pruned
