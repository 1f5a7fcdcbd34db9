"""The stream definition in one place: the `nats stream add` prompts (labels and defaults), how
the CLI's typed values (`2m0s`, `-1`, `1GB`) parse and print, the JetStream API JSON the form
maps to, the server's rules, the version gates and what may change after creation.

Pure functions over plain dicts in the JetStream API's own JSON shape: nats-py's StreamConfig
drops fields it does not know, and a read-modify-write must keep them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

Version = tuple[int, int, int]

NS = 1_000_000_000
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
MIN_WINDOW_NS = 100_000_000  # the server's floor for max_age and duplicate_window
MAX_NAME_BYTES = 255
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
MAX_TYPED = 64  # characters in a typed number, size or duration: more is no real value


def beyond_maximum(config: dict[str, Any], maximums: dict[str, int],
                   show: Callable[[str, Any], str]) -> dict[str, str]:
    """{key: message} for the numbers (or a list's: a backoff's steps) larger than the Go
    integer the server decodes them into (`maximums`): it refuses the whole request ("cannot
    unmarshal number"). `show` prints a value of the key as the form does."""
    errors = {}
    for key, maximum in maximums.items():
        value = config.get(key)
        steps = isinstance(value, list)
        if any(isinstance(number, int) and number > maximum
               for number in (value if steps else [value])):
            errors[key] = (f"Each at most {show(key, [maximum])}." if steps
                           else f"At most {show(key, maximum)}.")
    return errors


class ParseError(ValueError):
    """A value the CLI would not accept either; the message is shown beside the field."""


# Versions --------------------------------------------------------------------------------------


def parse_version(text: str) -> Version:
    """'2.10.3-beta' → (2, 10, 3); unknown or blank → the oldest version we support."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return UNKNOWN_VERSION
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def supported(field: str, version: Version) -> bool:
    return version >= SINCE.get(field, (0, 0, 0))


# Durations (nanoseconds, like the API) ---------------------------------------------------------

_DURATION_UNITS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS,
    "h": 3600 * NS, "d": 86400 * NS, "w": 7 * 86400 * NS, "y": 365 * 86400 * NS,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d|w|y)")
UNLIMITED_WORDS = {"-1", "unlimited", "none", "never", "forever", "inf"}


def parse_duration(text: str) -> int:
    """`2m0s`, `1h30m`, `500ms`, `7d` → nanoseconds; `-1`, `0`, `unlimited` → 0 (the API's
    "no limit")."""
    value = _typed(text).replace(" ", "")
    if value in UNLIMITED_WORDS or value in {"0", "0s"}:
        return 0
    if not value:
        raise ParseError("Give a duration such as 2m0s, 1h30m, 500ms or 7d, or -1.")
    total = Decimal(0)
    position = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += Decimal(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise ParseError(f"“{text.strip()}” is not a duration: use units ms, s, m, h, d "
                         "(2m0s, 1h30m, 500ms, 7d), or -1 for unlimited.")
    return int(total)


def format_duration(ns: int) -> str:
    """Go's time.Duration.String(): 2m0s, 1h30m0s, 500ms, 1.5s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < NS:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(Decimal(ns) / size) + unit
    hours, rest = divmod(ns, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    seconds = _trim(Decimal(rest) / NS) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def format_limit_duration(ns: int) -> str:
    """A duration where 0 means no limit, shown the way the CLI asks for it: -1."""
    return "-1" if ns <= 0 else format_duration(ns)


def _trim(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# Sizes and counts ------------------------------------------------------------------------------

# Like the nats CLI: K/KB/KiB are all 1024-based.
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
               "p": 1 << 50}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) *([kmgtp]?)(?:i?b)?")


def parse_size(text: str) -> int:
    """`1GB`, `512MiB`, `1024`, `-1` → bytes (-1 unlimited)."""
    value = _typed(text).replace("_", "")
    if value in UNLIMITED_WORDS:
        return -1
    match = _SIZE.fullmatch(value)
    if not match:
        raise ParseError(f"“{text.strip()}” is not a size: use bytes or a unit "
                         "(1024, 512MiB, 1GB), or -1 for unlimited.")
    try:
        amount = Decimal(match.group(1)) * _SIZE_UNITS[match.group(2)]
    except InvalidOperation:
        raise ParseError(f"“{text.strip()}” is not a size.") from None
    if amount != amount.to_integral_value():
        raise ParseError(f"“{text.strip()}” is not a whole number of bytes.")
    return int(amount)


def format_size(size: int) -> str:
    if size < 0:
        return "-1"
    for unit, factor in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                         ("KiB", 1 << 10)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def parse_limit(text: str) -> int:
    """A count: a whole number, or -1 / unlimited."""
    value = _typed(text).replace("_", "")
    if value in UNLIMITED_WORDS:
        return -1
    if not re.fullmatch(r"[0-9]+", value):  # ASCII digits: str.isdigit() takes ² and ①
        raise ParseError(f"“{text.strip()}” is not a whole number (or -1 for unlimited).")
    return int(value)


def _typed(text: str) -> str:
    """A typed value, trimmed and lowercased; refused when too long to be a real one (Python
    will not even read an integer of more than 4,300 digits)."""
    value = text.strip().lower()
    if len(value) > MAX_TYPED:
        raise ParseError(f"At most {MAX_TYPED} characters: that is no real value.")
    return value


def format_limit(count: int) -> str:
    return "-1" if count < 0 else str(count)


# Names and subjects ----------------------------------------------------------------------------

_NAME_FORBIDDEN = re.compile(r"[\s.*>/\\\x00-\x1f\x7f]")
# Control, formatting (zero-width, direction overrides), private and unassigned characters:
# invisible, or they make a name display as something it is not.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}
MAX_SUBJECT_BYTES = 1024  # a subject travels on a protocol line of at most 4 KiB
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def hidden_characters(text: str) -> list[str]:
    """The characters of `text` that would not show as themselves, as U+XXXX."""
    return sorted({f"U+{ord(c):04X}" for c in text
                   if unicodedata.category(c) in _HIDDEN_CATEGORIES})


def utf8_size(text: str) -> int:
    """The bytes `text` takes on the wire. A lone surrogate (JSON's `"\\ud800"`, half a
    UTF-16 pair) cannot be encoded: it counts as the 3 bytes of the U+FFFD the server's Go
    decoder reads in its place."""
    return len(text.encode("utf-8", "surrogatepass"))


def lone_surrogate(text: str) -> str:
    """The first lone surrogate in `text`, or "" (a JSON text can hold one; no page can)."""
    match = _SURROGATE.search(text)
    return match.group() if match else ""


def name_errors(name: str, *, memphis: bool = False, kind: str = "stream") -> list[str]:
    """What is wrong with a stream's (or, with `kind`, a consumer's) name: the server's rules
    for both are the same."""
    errors = []
    if not name:
        return [f"A {kind} needs a name."]
    if utf8_size(name) > MAX_NAME_BYTES:
        errors.append(f"At most {MAX_NAME_BYTES} bytes.")
    bad = sorted(set(_NAME_FORBIDDEN.findall(name)))
    if bad:
        shown = ", ".join("space" if c == " " else repr(c).strip("'") for c in bad)
        errors.append(f"Not allowed in a {kind} name: {shown}.")
    if hidden := hidden_characters(name):
        errors.append(f"Invisible or direction-changing characters are not allowed: "
                      f"{', '.join(hidden)}.")
    if memphis and name != name.lower():
        errors.append("Memphis stations are lowercase: Memphis would rename this stream.")
    return errors


def parse_subjects(text: str) -> list[str]:
    """Comma, space or newline separated, as the CLI accepts them."""
    return [item for item in re.split(r"[\s,]+", text.strip()) if item]


def subject_error(subject: str) -> str:
    if hidden := hidden_characters(subject):
        return f"A subject contains invisible or control characters: {', '.join(hidden)}."
    if utf8_size(subject) > MAX_SUBJECT_BYTES:
        return f"A subject has at most {MAX_SUBJECT_BYTES} bytes."
    if any(c.isspace() for c in subject):
        return f"“{subject}” contains white space."
    tokens = subject.split(".")
    if any(token == "" for token in tokens):
        return f"“{subject}” has an empty token (leading, trailing or double dot)."
    for index, token in enumerate(tokens):
        if token != "*" and token != ">" and ("*" in token or ">" in token):
            return f"“{subject}”: wildcards * and > must be whole tokens."
        if token == ">" and index != len(tokens) - 1:
            return f"“{subject}”: > must be the last token."
    return ""


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


def subjects_overlap(a: str, b: str) -> bool:
    """Whether two subjects (wildcards allowed) can match one same subject: a concrete one
    overlaps the patterns that would take it, as the server decides which stream stores a
    message (and `nats stream find --subject` which streams to name)."""
    left, right = a.split("."), b.split(".")
    for index, (x, y) in enumerate(zip(left, right, strict=False)):
        if x == ">" or y == ">":
            return True
        if x != y and "*" not in (x, y):
            return False
        if index == min(len(left), len(right)) - 1 and len(left) != len(right):
            return False
    return len(left) == len(right)


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
