"""The team audit log: every change, who made it, when, before and after, and how it ended.

chain    the HMAC hash chain and its sealed head, verify and prune; snapshots and diffs the
         entries carry. The write path is AuditEvent.objects (entry, record, append, in
         streams.models, sealed by streams.seal); chain's entry, record and append hand on to it
filters  the review screen's filters (the screen itself is streams.views.audit)

Re-exported here: `from streams import audit; audit.record(...)`."""

from streams.audit.chain import (
    GENESIS,
    Context,
    HeadRef,
    append,
    command_actor,
    deletion_gate,
    diff,
    entry,
    profile_snapshot,
    prune,
    record,
    start_chain,
    verify,
)

__all__ = [
    "GENESIS", "Context", "HeadRef", "append", "command_actor", "deletion_gate", "diff", "entry",
    "profile_snapshot", "prune", "record", "start_chain", "verify",
]
