"""The team audit log: every change, who made it, when, before and after, and how it ended.

chain      the HMAC hash chain and its sealed head, the context entries copy; snapshots and
           diffs the entries carry. The write path is AuditEvent.objects (entry, record,
           append, in streams.models, sealed by streams.seal); chain's entry, record and append
           hand on to it
integrity  the chain read back: verify (the walk from the last checkpoint to the head), prune
filters    the review screen's filters (the screen itself is streams.views.audit)

The write path, verify and prune are re-exported here: `from streams import audit;
audit.record(...)`, `audit.verify()`."""

from streams.audit.chain import (
    GENESIS,
    Context,
    append,
    command_actor,
    deletion_gate,
    diff,
    entry,
    profile_snapshot,
    record,
    start_chain,
)
from streams.audit.integrity import prune, verify

__all__ = [
    "GENESIS", "Context", "append", "command_actor", "deletion_gate", "diff", "entry",
    "profile_snapshot", "prune", "record", "start_chain", "verify",
]
