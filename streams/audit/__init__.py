"""The team audit log: every change, who made it, when, before and after, and how it ended.

chain      the HMAC hash chain and its sealed head, the context entries copy; snapshots and
           diffs the entries carry. The write path is AuditEvent.objects (entry, record,
           append, in streams.models, sealed by streams.seal)
integrity  the chain read back: verify (the walk from the last checkpoint to the head), prune
filters    the review screen's filters (the screen itself is streams.views.audit)

Entries are written through AuditEvent.objects only (`AuditEvent.objects.record(...)`), not
through this package; verify, prune and chain's helpers are re-exported here:
`from streams import audit; audit.verify()`."""

from streams.audit.chain import (
    GENESIS,
    Context,
    command_actor,
    deletion_gate,
    diff,
    profile_snapshot,
    start_chain,
)
from streams.audit.integrity import prune, verify

__all__ = [
    "GENESIS", "Context", "command_actor", "deletion_gate", "diff", "profile_snapshot", "prune",
    "start_chain", "verify",
]
