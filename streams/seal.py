"""How the audit log is sealed: an entry's hash, the chain head's and a prune checkpoint's MACs,
all HMAC-SHA256 with AUDIT_HMAC_KEY over canonical JSON (streams.audit.chain says why). Pure:
below the models, whose manager chains the entries (AuditEvent.objects.append), and the
verification that checks them."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

GENESIS = "0" * 64
# The stored content an entry's hash covers: every column but id and the hashes themselves.
CHAINED_FIELDS = (
    "seq", "at", "actor_id", "actor_name", "ip", "user_agent", "request_id", "action",
    "target_type", "target_name", "profile_id", "profile_name", "job_id", "outcome", "before",
    "after", "changes", "message",
)


def as_stored(value: Any) -> Any:
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


def chained_content(event: Any) -> dict[str, Any]:
    """What of an AuditEvent its hash covers."""
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
