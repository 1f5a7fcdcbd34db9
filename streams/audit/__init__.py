"""The team audit log: every change, who made it, when, before and after, and how it ended.

chain      the one write path (entry, record, append), the HMAC hash chain and its sealed
           head; snapshots and diffs the entries carry
integrity  the chain read back: verify (the walk from the last checkpoint to the head), prune
views      the review screen, its filters, an entry's detail, and the exports

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
