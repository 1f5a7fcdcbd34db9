"""The stream definition in one place: the `nats stream add` prompts (labels and defaults), the
JetStream API JSON the form maps to, the server's rules, the version gates and what may change
after creation. The CLI's typed values (`2m0s`, `-1`, `1GB`) parse and print in cli_values,
names and subjects are checked in naming, system streams are told apart in system_streams.

Pure functions over plain dicts in the JetStream API's own JSON shape: nats-py's StreamConfig
drops fields it does not know, and a read-modify-write must keep them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from streams.cli_values import (
    INT32_MAX,
    INT64_MAX,
    NS,
    UINT64_MAX,
    ParseError,
    beyond_maximum,
    format_duration,
    format_limit,
    format_limit_duration,
    format_size,
)
from streams.naming import name_errors, subject_error
from streams.system_streams import SYSTEM_LABELS, system_kind

Version = tuple[int, int, int]

MIN_WINDOW_NS = 100_000_000  # the server's floor for max_age and duplicate_window
UNKNOWN_VERSION: Version = (2, 9, 0)  # the oldest server we support: offer nothing newer

# The prompts of `nats stream add`, in its order, then the advanced options.
LABELS: dict[str, str] = {
    "name": "Stream Name",
    "subjects": "Subjects",
    "storage": "Storage",
    "num_replicas": "Replication",
    "retention": "Retention Policy",
    "discard": "Discard Policy",
    "max_msgs": "Stream Messages Limit",
    "max_msgs_per_subject": "Per Subject Messages Limit",
    "max_bytes": "Total Stream Size",
    "max_age": "Message TTL",
    "max_msg_size": "Max Message Size",
    "duplicate_window": "Duplicate tracking time window",
    "allow_rollup_hdrs": "Allow message Roll-ups",
    "allow_delete": "Allow message deletion",
    "allow_purge": "Allow purging subjects or the entire stream",
    "description": "Description",
    "max_consumers": "Maximum Consumers",
    "discard_new_per_subject": "Discard New Per Subject",
    "allow_direct": "Allow direct get",
    "mirror_direct": "Allow direct get on the mirror",
    "compression": "Message Compression",
    "first_seq": "First Sequence",
    "subject_transform_src": "Subject Transform Source",
    "subject_transform_dest": "Subject Transform Destination",
    "republish_src": "Republish Source",
    "republish_dest": "Republish Destination",
    "republish_headers_only": "Republish Headers Only",
    "placement_cluster": "Placement Cluster",
    "placement_tags": "Placement Tags",
    "mirror": "Mirror",
    "sources": "Sources",
    "metadata": "Metadata",
    "no_ack": "Disable Publish Acknowledgements",
    "allow_msg_ttl": "Allow per-message TTL",
    "subject_delete_marker_ttl": "Subject delete marker TTL",
    "sealed": "Sealed",
}
BASIC_FIELDS = tuple(list(LABELS)[:15])
ADVANCED_FIELDS = tuple(name for name in LABELS if name not in BASIC_FIELDS)

# What the form offers before the user types anything: the seed's answers.
DEFAULTS: dict[str, str] = {
    "storage": "file",
    "num_replicas": "1",
    "retention": "limits",
    "discard": "old",
    "max_msgs": "-1",
    "max_msgs_per_subject": "-1",
    "max_bytes": "-1",
    "max_age": "-1",
    "max_msg_size": "-1",
    "duplicate_window": "2m0s",
    "allow_rollup_hdrs": "no",
    "allow_delete": "yes",
    "allow_purge": "yes",
    "max_consumers": "-1",
    "compression": "none",
}

STORAGE_CHOICES = [("file", "file"), ("memory", "memory")]
RETENTION_CHOICES = [("limits", "Limits"), ("interest", "Interest"), ("workqueue", "Work Queue")]
DISCARD_CHOICES = [("old", "Old"), ("new", "New")]
COMPRESSION_CHOICES = [("none", "none"), ("s2", "s2")]

# Server version each advanced option needs (older servers silently ignore unknown JSON fields,
# so offering them there would lie to the user).
SINCE: dict[str, Version] = {
    "discard_new_per_subject": (2, 9, 0),
    "allow_direct": (2, 9, 0),
    "mirror_direct": (2, 9, 0),
    "compression": (2, 10, 0),
    "first_seq": (2, 10, 0),
    "subject_transform_src": (2, 10, 0),
    "subject_transform_dest": (2, 10, 0),
    "metadata": (2, 10, 0),
    "allow_msg_ttl": (2, 11, 0),
    "subject_delete_marker_ttl": (2, 11, 0),
}

# Form field → the API key it is stored under.
API_KEY: dict[str, str] = {
    "allow_delete": "deny_delete",
    "allow_purge": "deny_purge",
    "subject_transform_src": "subject_transform",
    "subject_transform_dest": "subject_transform",
    "republish_src": "republish",
    "republish_dest": "republish",
    "republish_headers_only": "republish",
    "placement_cluster": "placement",
    "placement_tags": "placement",
}
BASIC_API_KEYS = {API_KEY.get(name, name) for name in BASIC_FIELDS}
# API key → the form field its errors belong on.
FIELD_OF_KEY: dict[str, str] = {
    "deny_delete": "allow_delete",
    "deny_purge": "allow_purge",
    "subject_transform": "subject_transform_src",
    "republish": "republish_src",
    "placement": "placement_cluster",
}

# The server's own zero values: it omits them from its JSON, so a missing key means this.
ZERO: dict[str, Any] = {
    "description": "", "subjects": [], "max_consumers": -1, "max_msgs": -1, "max_bytes": -1,
    "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1, "duplicate_window": 0,
    "first_seq": 0, "compression": "none", "metadata": {}, "sources": [],
    "subject_delete_marker_ttl": 0,
}


# The Go type the server decodes each number into: it refuses a larger one as invalid JSON.
MAX_VALUE: dict[str, int] = {
    "max_msgs": INT64_MAX, "max_msgs_per_subject": INT64_MAX, "max_bytes": INT64_MAX,
    "max_age": INT64_MAX, "max_msg_size": INT32_MAX, "duplicate_window": INT64_MAX,
    "max_consumers": INT64_MAX, "first_seq": UINT64_MAX, "subject_delete_marker_ttl": INT64_MAX,
}


# Versions --------------------------------------------------------------------------------------


def parse_version(text: str) -> Version:
    """'2.10.3-beta' → (2, 10, 3); unknown or blank → the oldest version we support."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return UNKNOWN_VERSION
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def supported(field: str, version: Version) -> bool:
    return version >= SINCE.get(field, (0, 0, 0))


# Form ⇄ API JSON -------------------------------------------------------------------------------


def to_config(values: dict[str, Any]) -> dict[str, Any]:
    """Cleaned form values (typed: ints, bools, lists) → API JSON. Optional values left empty
    are omitted, so the server applies its defaults."""
    config: dict[str, Any] = {}
    for name, value in values.items():
        if name in {"allow_delete", "allow_purge"}:
            config[API_KEY[name]] = not value
        elif name in API_KEY:  # parts of an object, assembled below
            continue
        elif name == "mirror":
            if value:
                config["mirror"] = {"name": value}
        elif name == "sources":
            if value:
                config["sources"] = [{"name": source} for source in value]
        elif name in {"description", "metadata", "first_seq", "subject_delete_marker_ttl"}:
            if value:
                config[name] = value
        else:
            config[name] = value
    transform = (values.get("subject_transform_src"), values.get("subject_transform_dest"))
    if any(transform):
        config["subject_transform"] = {"src": transform[0] or "", "dest": transform[1] or ""}
    if values.get("republish_src") or values.get("republish_dest"):
        config["republish"] = {"src": values.get("republish_src") or "",
                               "dest": values.get("republish_dest") or "",
                               "headers_only": bool(values.get("republish_headers_only"))}
    placement = {key: values.get(f"placement_{key}") for key in ("cluster", "tags")}
    if any(placement.values()):
        config["placement"] = {key: value for key, value in placement.items() if value}
    return config


def api_keys(fields: list[str] | set[str]) -> list[str]:
    """The API keys behind these form fields."""
    return list(dict.fromkeys(API_KEY.get(name, name) for name in fields))


def to_initial(config: dict[str, Any]) -> dict[str, str | bool]:
    """A live config → the form's text values, formatted the way the CLI prints them."""
    transform = config.get("subject_transform") or {}
    republish = config.get("republish") or {}
    placement = config.get("placement") or {}
    return {
        "name": config.get("name", ""),
        "subjects": ", ".join(config.get("subjects") or []),
        "storage": config.get("storage", "file"),
        "num_replicas": str(config.get("num_replicas") or 1),
        "retention": config.get("retention", "limits"),
        "discard": config.get("discard", "old"),
        "max_msgs": format_limit(config.get("max_msgs", -1)),
        "max_msgs_per_subject": format_limit(config.get("max_msgs_per_subject", -1)),
        "max_bytes": format_size(config.get("max_bytes", -1)),
        "max_age": format_limit_duration(config.get("max_age", 0)),
        "max_msg_size": format_size(config.get("max_msg_size", -1)),
        "duplicate_window": format_duration(config.get("duplicate_window", 0)),
        "allow_rollup_hdrs": yes_no(config.get("allow_rollup_hdrs", False)),
        "allow_delete": yes_no(not config.get("deny_delete", False)),
        "allow_purge": yes_no(not config.get("deny_purge", False)),
        "description": config.get("description", ""),
        "max_consumers": format_limit(config.get("max_consumers", -1)),
        "discard_new_per_subject": bool(config.get("discard_new_per_subject")),
        "allow_direct": bool(config.get("allow_direct")),
        "mirror_direct": bool(config.get("mirror_direct")),
        "compression": config.get("compression") or "none",
        "first_seq": str(config.get("first_seq") or ""),
        "subject_transform_src": transform.get("src", ""),
        "subject_transform_dest": transform.get("dest", ""),
        "republish_src": republish.get("src", ""),
        "republish_dest": republish.get("dest", ""),
        "republish_headers_only": bool(republish.get("headers_only")),
        "placement_cluster": placement.get("cluster", ""),
        "placement_tags": ", ".join(placement.get("tags") or []),
        "mirror": (config.get("mirror") or {}).get("name", ""),
        "sources": "\n".join(source.get("name", "") for source in config.get("sources") or []),
        "metadata": format_metadata(config.get("metadata") or {}),
        "no_ack": bool(config.get("no_ack")),
        "allow_msg_ttl": bool(config.get("allow_msg_ttl")),
        "subject_delete_marker_ttl": (format_duration(config["subject_delete_marker_ttl"])
                                      if config.get("subject_delete_marker_ttl") else ""),
        "sealed": bool(config.get("sealed")),
    }


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def parse_metadata(text: str) -> dict[str, str]:
    metadata = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ParseError(f"“{line.strip()}”: write one key=value per line.")
        if key.strip().startswith("_nats."):
            raise ParseError("Keys starting with _nats. belong to the server.")
        metadata[key.strip()] = value.strip()
    return metadata


def format_metadata(metadata: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in user_metadata(metadata).items())


def user_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """The server writes its own `_nats.*` keys (2.11+); they are not the user's to edit."""
    return {key: value for key, value in metadata.items() if not key.startswith("_nats.")}


def format_value(key: str, value: Any) -> str:
    """An API value the way the form shows it, for diffs and read-only displays."""
    if key in {"max_age"}:
        return format_limit_duration(value or 0)
    if key in {"duplicate_window", "subject_delete_marker_ttl"}:
        return format_duration(value or 0)
    if key in {"max_bytes", "max_msg_size"}:
        return format_size(-1 if value is None else value)
    if key in {"max_msgs", "max_msgs_per_subject", "max_consumers"}:
        return format_limit(-1 if value is None else value)
    if key in {"deny_delete", "deny_purge"}:
        return "No" if value else "Yes"  # shown as the "Allow …" question
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if key == "subjects":
        return ", ".join(value or []) or "—"
    if key == "metadata":
        return ", ".join(f"{k}={v}" for k, v in user_metadata(value or {}).items()) or "—"
    if key in {"mirror"}:
        return (value or {}).get("name", "—")
    if key == "sources":
        return ", ".join(source.get("name", "") for source in value or []) or "—"
    if value in (None, "", {}, []):
        return "—"
    return str(value)


def label_of_key(key: str) -> str:
    field = FIELD_OF_KEY.get(key, key)
    if key in {"subject_transform", "republish", "placement"}:
        return LABELS[field].rsplit(" ", 1)[0]
    return LABELS.get(field, key)


# Edits -----------------------------------------------------------------------------------------


_OBJECT_KEYS = {"subject_transform", "republish", "placement", "mirror"}


def pruned(value: Any) -> Any:
    """An object without its empty members: a server that fills in `"external": null` or
    `"filter_subject": ""` means the same as one that leaves them out."""
    if isinstance(value, dict):
        members = {key: pruned(member) for key, member in value.items()}
        return {key: member for key, member in members.items()
                if member not in (None, False, "", [], {})}
    if isinstance(value, list):
        return [pruned(member) for member in value]
    return value


def _comparable(key: str, value: Any, *, by_name: bool = True) -> Any:
    if value is None:
        value = None if key in _OBJECT_KEYS else ZERO.get(key, False)
    if key == "metadata":
        return user_metadata(value or {})
    if key in {"sources", "mirror"}:
        sources = [source for source in (value if isinstance(value, list) else [value])
                   if source]
        return [source.get("name") for source in sources] if by_name else pruned(sources)
    return value


# `by_name`: the form names sources and a mirror only, so its edits compare them by name and
# keep the options the server has; a plan's values are whole (a definition's) and are not.


def diff(current: dict[str, Any], desired: dict[str, Any], keys: list[str], *,
         by_name: bool = True) -> dict[str, list]:
    """{api_key: [current, new]} over the keys the form showed. Compared with the server's own
    config, so the defaults it filled in do not show as changes."""
    return {key: [current.get(key), desired.get(key)] for key in keys
            if _comparable(key, current.get(key), by_name=by_name)
            != _comparable(key, desired.get(key), by_name=by_name)}


def apply(current: dict[str, Any], changes: dict[str, list[Any]], *,
          by_name: bool = True) -> dict[str, Any]:
    """The live config with only the changed keys replaced: fields the form does not show, or
    that our client library does not know, go back to the server untouched."""
    updated = dict(current)
    for key, (_old, new) in changes.items():
        if key == "metadata":  # keep the server's own _nats.* keys
            server_keys = {k: v for k, v in (current.get("metadata") or {}).items()
                           if k.startswith("_nats.")}
            updated[key] = {**server_keys, **(new or {})}
        elif key == "sources" and new and by_name:  # keep the options of sources that stay
            kept = {source.get("name"): source for source in current.get("sources") or []}
            updated[key] = [kept.get(source["name"], source) for source in new]
        elif new is None:
            updated.pop(key, None)
        else:
            updated[key] = new
    return updated


def conflicts(current: dict[str, Any], changes: dict[str, list[Any]], *,
              by_name: bool = True) -> list[str]:
    """Keys someone else changed on the server since the form (or the plan) was read."""
    return [key for key, (old, _new) in changes.items()
            if _comparable(key, current.get(key), by_name=by_name)
            != _comparable(key, old, by_name=by_name)]


def read_only_reason(field: str, current: dict[str, Any], version: Version) -> str:
    """Why a field cannot change on this existing stream, or "" when it can."""
    if current.get("sealed"):
        return "The stream is sealed: its configuration can no longer change."
    if field == "name":
        return "A stream cannot be renamed."
    if field == "storage":
        return "Storage is chosen at creation."
    if field == "retention":
        if version < (2, 10, 0):
            return "Retention cannot change before nats-server 2.10."
        if current.get("retention") == "workqueue":
            return "A work-queue stream keeps its retention (2.10+ switches limits ↔ interest)."
    if field == "max_consumers" and version < (2, 12, 0):
        return "Maximum consumers cannot change before nats-server 2.12."
    if field == "first_seq":
        return "The first sequence applies at creation only."
    if field == "mirror":
        return "A stream cannot become or stop being a mirror."
    if field == "subjects" and current.get("mirror"):
        return "A mirror has no subjects of its own."
    if field == "allow_delete" and current.get("deny_delete"):
        return "Message deletion was denied; that cannot be undone."
    if field == "allow_purge" and current.get("deny_purge"):
        return "Purging was denied; that cannot be undone."
    if field == "allow_msg_ttl" and current.get("allow_msg_ttl"):
        return "Per-message TTL cannot be turned off once allowed."
    return ""


def destruction_refusal(config: dict[str, Any], verb: str) -> str:
    """Why the stream cannot be deleted or purged ("" when it can). Deleting throws away every
    message, so a stream that denies purging refuses that too."""
    if config.get("sealed"):
        return f"The stream is sealed: it cannot be {verb}."
    if config.get("deny_purge"):
        return f"The stream denies purging: it cannot be {verb}."
    return ""


def sighting(info: dict[str, Any], *, config: bool = True, state: bool = False
             ) -> dict[str, Any]:
    """What tells the stream someone saw (in a STREAM.INFO answer) from any other of its name,
    so a step confirmed for it runs on no other: when it was made, optionally its whole config
    and its last sequence (a stream that stored messages since is in use again)."""
    seen: dict[str, Any] = {"created": info.get("created", "")}
    if config:
        seen["config"] = info.get("config") or {}
    if state:
        seen["last_seq"] = (info.get("state") or {}).get("last_seq", 0)
    return seen


def changed_since(seen: dict[str, Any], info: dict[str, Any], *,
                  compare: Callable[..., dict[str, list]] | None = None,
                  label: Callable[[str], str] | None = None) -> str:
    """How the live stream differs from the one seen ("" when it is that one): made again, a
    key of its config added, removed or changed (compared as the server means it), or
    messages stored. A consumer's module passes its own `compare` (diff) and `label`."""
    if info.get("created") != seen.get("created"):
        return "deleted and made again"
    if "config" in seen:
        keys = [key for key in {**seen["config"], **info["config"]} if key != "name"]
        changed = (compare(seen["config"], info["config"], keys) if compare else
                   diff(seen["config"], info["config"], keys, by_name=False))
        if changed:
            return "changed (" + ", ".join(map(label or label_of_key, changed)) + ")"
    if "last_seq" in seen:
        stored = (info.get("state") or {}).get("last_seq", 0) - seen["last_seq"]
        if stored:
            return f"given {stored} new message{'s' if stored != 1 else ''}"
    return ""


# Server rules ----------------------------------------------------------------------------------


def rule_errors(
    config: dict[str, Any], *, memphis: bool = False, current: dict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """The server's rules (and Memphis's), checked before the server sees the config. Keys are
    form field names."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if current is None:
        name = config.get("name", "")
        for message in name_errors(name, memphis=memphis):
            add("name", message)
        if kind := system_kind(name):
            add("name", f"This name makes it a {SYSTEM_LABELS[kind]} stream, which this "
                        "dashboard keeps read-only: choose another name.")
    for subject in config.get("subjects") or []:
        if error := subject_error(subject):
            add("subjects", error)
    subjects = config.get("subjects") or []
    if len(set(subjects)) != len(subjects):
        add("subjects", "A subject is listed twice.")
    if config.get("mirror") and subjects:
        add("subjects", "A mirror has no subjects of its own.")
    if config.get("mirror") and config.get("sources"):
        add("mirror", "A stream is a mirror or has sources, not both.")
    for key, message in beyond_maximum(config, MAX_VALUE, format_value).items():
        add(FIELD_OF_KEY.get(key, key), message)
    replicas = config.get("num_replicas", 1)
    if not 1 <= replicas <= 5:
        add("num_replicas", "Replication is 1 to 5.")
    if memphis and config.get("retention") == "workqueue":
        add("retention", "Memphis does not accept work-queue retention.")
    max_age = config.get("max_age", 0)
    if 0 < max_age < MIN_WINDOW_NS:
        add("max_age", "At least 100ms, or -1 for unlimited.")
    window = config.get("duplicate_window", 0)
    if 0 < window < MIN_WINDOW_NS:
        add("duplicate_window", "At least 100ms.")
    elif max_age > 0 and window > max_age:
        add("duplicate_window", f"Must not exceed the Message TTL ({format_duration(max_age)}).")
    if config.get("allow_rollup_hdrs") and config.get("deny_purge"):
        add("allow_rollup_hdrs", "Roll-ups purge messages: they need purging allowed.")
    marker = config.get("subject_delete_marker_ttl", 0)
    if 0 < marker < NS:
        add("subject_delete_marker_ttl", "At least 1s.")
    if current is None and config.get("sealed"):
        add("sealed", "A stream cannot be created sealed.")
    if current is not None:
        if current.get("deny_delete") and not config.get("deny_delete"):
            add("allow_delete", "Message deletion was denied; that cannot be undone.")
        if current.get("deny_purge") and not config.get("deny_purge"):
            add("allow_purge", "Purging was denied; that cannot be undone.")
        if current.get("sealed") and not config.get("sealed"):
            add("sealed", "A sealed stream cannot be unsealed.")
        old = current.get("retention", "limits")
        new = config.get("retention", old)
        if old != new and "workqueue" in {old, new}:
            add("retention", "Only limits ↔ interest can change after creation.")
    return errors
