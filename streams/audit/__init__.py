"""The team audit log: every change, who made it, when, before and after, and how it ended.

chain  the one write path (entry, record, append), the HMAC hash chain and its sealed head,
       verify and prune; snapshots and diffs the entries carry
views  the review screen, its filters, an entry's detail, and the exports

The write path is re-exported here: `from streams import audit; audit.record(...)`."""

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
