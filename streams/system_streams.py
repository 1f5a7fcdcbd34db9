"""The streams the user did not make, which the dashboard shows apart and keeps read-only:
Memphis's own, key-value and object store buckets, and the stream the advisory listener keeps
JetStream's API advisories in while it is down (its name and config)."""

from __future__ import annotations

from typing import Any

from streams.cli_values import NS

SYSTEM_LABELS = {"memphis": "Memphis system", "kv": "key-value bucket",
                 "objectstore": "object store", "capture": "advisory capture"}
# What such streams are called when a list says how many it hides: (one, several).
SYSTEM_NOUNS = {"memphis": ("Memphis system stream", "Memphis system streams"),
                "kv": ("key-value bucket", "key-value buckets"),
                "objectstore": ("object store", "object stores"),
                "capture": ("advisory capture stream", "advisory capture streams")}


def system_noun(kind: str, count: int) -> str:
    one, several = SYSTEM_NOUNS.get(kind, ("system stream", "system streams"))
    return one if count == 1 else several

# The stream a profile keeps JetStream's API advisories in while the listener is down, made
# and removed by a job with the user's consent: small and bounded, whatever the account's
# traffic. Lowercase, or Memphis would rename it. An advisory larger than max_msg_size (a page
# of a big listing) is not kept: it would push many stream changes out of the 8 MiB.
CAPTURE_STREAM = "memphisadmin_advisories"
CAPTURE_CONFIG: dict[str, Any] = {
    "name": CAPTURE_STREAM,
    "description": "JetStream API advisories kept for memphisadmin's listener while it is down",
    "subjects": ["$JS.EVENT.ADVISORY.API"],
    "retention": "limits", "storage": "file", "num_replicas": 1, "discard": "old",
    "max_bytes": 8 << 20, "max_age": 7 * 24 * 3600 * NS, "max_msg_size": 128 << 10,
    "max_msgs": -1, "max_msgs_per_subject": -1, "duplicate_window": 120 * NS,
}


def system_kind(name: str) -> str:
    """Streams the user did not make: Memphis's own, KV / object store buckets, and the
    advisory capture stream."""
    if name.lower().startswith("$memphis"):
        return "memphis"
    if name == CAPTURE_STREAM:
        return "capture"
    if name.startswith("KV_"):
        return "kv"
    if name.startswith("OBJ_"):
        return "objectstore"
    return ""
