"""Stream definitions, the team's source of truth, against what the broker has: whether a stream
is managed, in sync, drifted (and how) or missing. Pure: no database, no broker.

A definition is the config the server answered with when the dashboard created, changed or
adopted the stream, so what the server filled in is in it already. What is left to forgive is
the server's spelling: a key it omits because it holds its zero value, a key an older or newer
server does not know, and values it writes differently from how a client may send them
(`0` for an unlimited `-1`, a default left out)."""

from __future__ import annotations

from typing import Any

from django.db import models

from streams.stream_config import label_of_key, pruned, user_metadata


class StreamSync(models.TextChoices):
    """A stream against the team's definition of it (the Stream row's `sync`)."""

    UNMANAGED = "unmanaged", "unmanaged"  # made elsewhere; no definition
    IN_SYNC = "in_sync", "in sync"
    DRIFTED = "drifted", "drifted"
    MISSING = "missing", "missing"  # defined here, deleted on the broker


# Counts and sizes the server stores as -1 for "no limit" whatever was sent (0 included).
_LIMITS = {"max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size", "max_consumers"}
# Durations whose "none" is 0 (a negative one is refused by the server).
_DURATIONS = {"max_age", "duplicate_window", "subject_delete_marker_ttl"}
# What a key left out means, where that is not the value's zero.
_OMITTED = {"storage": "file", "retention": "limits", "discard": "old", "num_replicas": 1,
            "compression": "none"}
# Not part of a stream's configuration, or the stream's identity itself.
_NOT_COMPARED = {"name", "created"}
# The duplicate window the server writes for one left out (or 0): two minutes, or the max age
# when that is shorter; a mirror gets none.
_DEFAULT_WINDOW = 120 * 10**9


def normalise(key: str, value: Any) -> Any:
    """A config value as the server means it, so that equal meanings compare equal."""
    if key in _LIMITS:
        return -1 if value is None or value <= 0 else value
    if key in _DURATIONS:
        return 0 if value is None or value <= 0 else value
    if key == "metadata":
        value = user_metadata(value or {})
    elif key == "sources":
        value = [pruned(source) for source in value or []]
    elif isinstance(value, dict):
        value = pruned(value)
    if value is None or value == _OMITTED.get(key) or value in (False, "", [], {}):
        return None
    return value


def drift(stored: dict[str, Any], live: dict[str, Any]) -> dict[str, list[Any]]:
    """{api_key: [defined, live]} for every key whose meaning differs, in the definition's key
    order then the live one's."""
    if stored == live:  # as after every apply or adoption: nothing to normalise
        return {}
    keys = dict.fromkeys([*stored, *live])
    return {key: [stored.get(key), live.get(key)] for key in keys
            if key not in _NOT_COMPARED and _meaning(key, stored) != _meaning(key, live)}


def _meaning(key: str, config: dict[str, Any]) -> Any:
    """normalise(), and what the server writes for a value left out that depends on others."""
    if key == "duplicate_window" and not config.get(key) and not config.get("mirror"):
        max_age = normalise("max_age", config.get("max_age"))
        return min(_DEFAULT_WINDOW, max_age) if max_age else _DEFAULT_WINDOW
    if key == "subjects" and not (config.get(key) or config.get("mirror")
                                  or config.get("sources")):
        return [config.get("name")]  # a stream that takes no other's messages listens on its name
    return normalise(key, config.get(key))


def state(definition: dict[str, Any] | None, live: dict[str, Any] | None
          ) -> tuple[StreamSync, dict[str, list[Any]] | None]:
    """A stream's sync state and its drift, from its definition (None: unmanaged) and its live
    config (None: not on the broker)."""
    if definition is None:
        return StreamSync.UNMANAGED, None
    if live is None:
        return StreamSync.MISSING, None
    changes = drift(definition, live)
    return (StreamSync.DRIFTED, changes) if changes else (StreamSync.IN_SYNC, None)


def labelled(changes: dict[str, list[Any]]) -> list[tuple[str, str, Any, Any]]:
    """A drift's rows for the screen: (api key, form label, defined, live)."""
    return [(key, label_of_key(key), defined, live) for key, (defined, live) in changes.items()]
