"""The consumer definition in one place, the counterpart of stream_config: the `nats consumer add`
prompts (labels, order, defaults) and its flags, the CLI's value syntax (`30s`, `1h`, `-1`,
`1MiB`), the JetStream API JSON the form maps to, the server's rules, the version gates and what
may change after creation (nats-server's checkConsumerCfg and checkNewConsumerConfig).

Pure functions over plain dicts in the API's own JSON shape, so that a read-modify-write keeps
the fields the form does not show."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from streams import stream_config
from streams.cli_values import (
    INT64_MAX,
    MAX_TYPED,
    UINT64_MAX,
    ParseError,
    beyond_maximum,
    format_duration,
    format_limit,
    format_size,
    parse_duration,
    parse_limit,
    parse_size,
)
from streams.naming import name_errors, subject_error, subjects_overlap, utf8_size
from streams.stream_config import Version, format_metadata, user_metadata

# The prompts of `nats consumer add`, in its order, then the options it takes as flags only.
LABELS: dict[str, str] = {
    "durable_name": "Consumer name",
    "deliver_subject": "Delivery target (empty for Pull Consumers)",
    "deliver_group": "Delivery Queue Group",
    "start_policy": "Start policy (all, new, last, subject, 1h, msg sequence)",
    "ack_policy": "Acknowledgment policy",
    "replay_policy": "Replay policy",
    "filter_subjects": "Filter Stream by subjects (blank for all)",
    "max_deliver": "Maximum Allowed Deliveries",
    "max_ack_pending": "Maximum Acknowledgments Pending",
    "idle_heartbeat": "Idle Heartbeat",
    "flow_control": "Enable Flow Control, ie --flow-control",
    "headers_only": "Deliver headers only without bodies",
    "backoff": "Retry Backoff Policy",
    "description": "Description",
    "ack_wait": "Acknowledgment waiting time",
    "max_waiting": "Maximum number of outstanding pulls allowed",
    "max_batch": "Maximum batch size for a pull request to accept",
    "max_expires": "Maximum expire duration for a pull request to accept",
    "max_bytes": "Maximum max bytes for a pull request to accept",
    "inactive_threshold": "Inactive threshold",
    "sample_freq": "Percentage of requests to sample for monitoring purposes",
    "rate_limit_bps": "Restrict message delivery to a certain bit per second",
    "num_replicas": "Replicas",
    "mem_storage": "Store the consumer state in memory",
    "metadata": "Metadata",
    "pause_until": "Pause until (time or duration)",
    "priority_policy": "Priority policy",
    "priority_groups": "Priority groups",
    "priority_timeout": "Pinned client TTL",
}
BASIC_FIELDS = tuple(list(LABELS)[:13])
ADVANCED_FIELDS = tuple(name for name in LABELS if name not in BASIC_FIELDS)

# The CLI's defaults for its prompts (an acknowledgment policy of explicit is its default for
# pull consumers, which a consumer is until it gets a delivery target).
DEFAULTS: dict[str, str] = {
    "start_policy": "all",
    "ack_policy": "explicit",
    "replay_policy": "instant",
    "max_deliver": "-1",
    "max_ack_pending": "0",
    "idle_heartbeat": "0s",
    "flow_control": "no",
    "headers_only": "no",
    "num_replicas": "0",
    "priority_policy": "none",
}

ACK_CHOICES = [("explicit", "explicit"), ("all", "all"), ("none", "none")]
REPLAY_CHOICES = [("instant", "instant"), ("original", "original")]
PRIORITY_CHOICES = [("none", "none"), ("overflow", "overflow"),
                    ("pinned_client", "pinned_client"), ("prioritized", "prioritized")]

# Server version each option needs: older servers ignore JSON fields they do not know.
SINCE: dict[str, Version] = {
    "metadata": (2, 10, 0),
    "pause_until": (2, 11, 0),
    "priority_policy": (2, 11, 0),
    "priority_groups": (2, 11, 0),
    "priority_timeout": (2, 11, 0),
}
MULTIPLE_FILTERS_SINCE: Version = (2, 10, 0)
PAUSE_SINCE: Version = (2, 11, 0)
PRIORITY_POLICY_SINCE: dict[str, Version] = {"prioritized": (2, 12, 0)}
ACTION_SINCE: Version = (2, 10, 0)  # create requests say "create" or "update"

# Form field → the API keys it is stored under.
API_KEYS: dict[str, tuple[str, ...]] = {
    "start_policy": ("deliver_policy", "opt_start_seq", "opt_start_time"),
    "filter_subjects": ("filter_subject", "filter_subjects"),
}
FIELD_OF_KEY: dict[str, str] = {key: field for field, keys in API_KEYS.items() for key in keys}

# The server leaves these out of its JSON for their zero value: a missing key means this.
ZERO: dict[str, Any] = {
    "description": "", "deliver_subject": "", "deliver_group": "", "opt_start_seq": 0,
    "ack_wait": 0, "max_deliver": 0, "backoff": [], "filter_subject": "",
    "filter_subjects": [], "rate_limit_bps": 0, "sample_freq": "", "max_waiting": 0,
    "max_ack_pending": 0, "flow_control": False, "headers_only": False, "max_batch": 0,
    "max_expires": 0, "max_bytes": 0, "idle_heartbeat": 0, "inactive_threshold": 0,
    "num_replicas": 0, "mem_storage": False, "metadata": {}, "priority_groups": [],
    "priority_policy": "none", "priority_timeout": 0,
}
_TIME_KEYS = {"opt_start_time", "pause_until"}
_DURATION_KEYS = {"ack_wait", "max_expires", "idle_heartbeat", "inactive_threshold",
                  "priority_timeout"}

# The Go type each number is decoded into (int, uint64 or time.Duration; a backoff is a list
# of durations).
MAX_VALUE: dict[str, int] = {
    "max_deliver": INT64_MAX, "max_ack_pending": INT64_MAX, "max_waiting": INT64_MAX,
    "max_batch": INT64_MAX, "max_bytes": INT64_MAX, "rate_limit_bps": UINT64_MAX,
    "opt_start_seq": UINT64_MAX, **dict.fromkeys([*_DURATION_KEYS, "backoff"], INT64_MAX),
}
MIN_HEARTBEAT_NS = 100_000_000  # nats-server: idle heartbeat >= 100ms
MIN_EXPIRES_NS = 1_000_000  # max expires >= 1ms
MAX_DESCRIPTION = 4096  # JSMaxDescriptionLen
MAX_METADATA_BYTES = 128 * 1024  # JSMaxMetadataLen
_GROUP_NAME = re.compile(r"[a-zA-Z0-9/_=-]{1,16}")  # nats-server's validGroupName


def supported(field: str, version: Version) -> bool:
    return version >= SINCE.get(field, (0, 0, 0))


def priority_choices(version: Version) -> list[tuple[str, str]]:
    return [(value, label) for value, label in PRIORITY_CHOICES
            if version >= PRIORITY_POLICY_SINCE.get(value, (0, 0, 0))]


# Times ----------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An API time (RFC 3339, nanoseconds allowed) or a typed `2026-01-02 15:04:05` (UTC)."""
    value = text.strip().replace("Z", "+00:00")
    # Python reads at most six fractional digits; the server writes nine.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(f"“{text.strip()}” is not a time: write 2026-01-02 15:04:05 (UTC)."
                         ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:  # 0001-01-01T00:00+01:00 is a valid date whose UTC is not
        return moment.astimezone(UTC)
    except OverflowError:
        raise ParseError("Too far: that is past the end of the calendar.") from None


def format_time(moment: datetime) -> str:
    """How the form shows a time: the CLI's time.DateTime layout, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def api_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _shifted(now: datetime, ns: int) -> datetime:
    """`now` moved by a typed duration, refused when the calendar ends first."""
    try:
        return now + timedelta(microseconds=ns // 1000)
    except OverflowError:
        raise ParseError("Too far: that is past the end of the calendar.") from None


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """`--pause`: a duration from now (1h30m) or a time (2026-01-02 15:04:05, UTC)."""
    now = now or datetime.now(UTC)
    if re.match(r"\s*\d{4}-\d\d-\d\d", text):
        return parse_time(text)
    delta = parse_duration(text)
    if delta <= 0:
        raise ParseError("Give a time such as 2026-01-02 15:04:05 (UTC) or a duration like 1h.")
    return _shifted(now, delta)


# Start policy ---------------------------------------------------------------------------------

_POLICY_WORDS = {"all": "all", "new": "new", "next": "new", "last": "last",
                 "subject": "last_per_subject", "last_per_subject": "last_per_subject"}
_POLICY_NAMES = {"all": "all", "new": "new", "last": "last", "last_per_subject": "subject"}


def parse_start_policy(text: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The CLI's `--deliver`: all, new, last, subject, a stream sequence, or a duration back
    from now (1h: the messages of the last hour); also a time, which is how an existing
    consumer's start time is shown."""
    value = text.strip().lower()
    if len(value) > MAX_TYPED:
        raise ParseError(f"At most {MAX_TYPED} characters.")
    if value in _POLICY_WORDS:
        return {"deliver_policy": _POLICY_WORDS[value]}
    if re.fullmatch(r"[0-9]+", value):
        sequence = int(value)
        if not 1 <= sequence <= UINT64_MAX:
            raise ParseError("A start sequence is 1 to 18446744073709551615.")
        return {"deliver_policy": "by_start_sequence", "opt_start_seq": sequence}
    if re.match(r"\d{4}-\d\d-\d\d", value):
        start = parse_time(text)
    else:
        try:
            delta = parse_duration(value)
        except ParseError:
            raise ParseError(f"“{text.strip()}”: give all, new, last, subject, a stream "
                             "sequence, or how far back to start (1h, 7d).") from None
        start = _shifted(now or datetime.now(UTC), -delta)
    return {"deliver_policy": "by_start_time", "opt_start_time": api_time(start)}


def format_start_policy(config: dict[str, Any]) -> str:
    policy = config.get("deliver_policy") or "all"
    if policy == "by_start_sequence":
        return str(config.get("opt_start_seq") or "")
    if policy == "by_start_time":
        return format_time(parse_time(config["opt_start_time"])) if config.get(
            "opt_start_time") else ""
    return _POLICY_NAMES.get(policy, policy)


# Values ---------------------------------------------------------------------------------------


def parse_backoff(text: str) -> list[int]:
    """Redelivery delays, one per attempt: `1m, 5m, 10m`."""
    steps = [parse_duration(item) for item in re.split(r"[\s,]+", text.strip()) if item]
    if any(step <= 0 for step in steps):
        raise ParseError("Each step is a positive duration, like 1m, 5m, 10m.")
    return steps


def format_backoff(steps: list[int]) -> str:
    return ", ".join(format_duration(step) for step in steps)


def parse_groups(text: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", text.strip()) if item]


def parse_count(text: str) -> int:
    """A count with no "unlimited": a whole number."""
    value = parse_limit(text)
    if value < 0:
        raise ParseError("A whole number, 0 or more.")
    return value


def parse_optional_size(text: str) -> int:
    """A size where the server has no "unlimited" but leaving it out: -1 means not set."""
    return max(parse_size(text), 0)


def format_optional_duration(ns: int | None) -> str:
    """A duration the server fills in when left out: empty when not set."""
    return format_duration(ns) if ns else ""


def filters_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("filter_subjects") or (
        [config["filter_subject"]] if config.get("filter_subject") else []))


# Form ⇄ API JSON ------------------------------------------------------------------------------

# Left out when empty or zero: the server's default applies (0 pending acks: its 1000).
_OPTIONAL = {"description", "deliver_subject", "deliver_group", "backoff", "ack_wait",
             "max_ack_pending", "max_waiting", "max_batch", "max_expires", "max_bytes",
             "inactive_threshold", "rate_limit_bps", "metadata", "priority_groups",
             "priority_timeout", "idle_heartbeat", "mem_storage", "flow_control",
             "headers_only"}


def to_config(values: dict[str, Any]) -> dict[str, Any]:
    """Cleaned form values (typed) → API JSON. Optional values left empty are omitted, so the
    server applies its defaults."""
    config: dict[str, Any] = {}
    for name, value in values.items():
        if name == "start_policy":
            config.update(value or {"deliver_policy": "all"})
        elif name == "filter_subjects":
            filters = value or []
            if len(filters) == 1:
                config["filter_subject"] = filters[0]
            elif filters:
                config["filter_subjects"] = filters
        elif name == "sample_freq":
            if value:
                config[name] = str(value)
        elif name == "pause_until":
            if value:
                config[name] = api_time(value)
        elif name == "priority_policy":
            if value and value != "none":
                config[name] = value
        elif name in _OPTIONAL:
            if value:
                config[name] = value
        elif value is not None:
            config[name] = value
    # Like the CLI: "last per subject" needs a filter, and all subjects is one.
    if config.get("deliver_policy") == "last_per_subject" and not filters_of(config):
        config["filter_subject"] = ">"
    return config


def to_initial(config: dict[str, Any]) -> dict[str, Any]:
    """A live config → the form's text values, the way the CLI prints them."""
    return {
        "durable_name": config.get("durable_name") or config.get("name", ""),
        "deliver_subject": config.get("deliver_subject", ""),
        "deliver_group": config.get("deliver_group", ""),
        "start_policy": format_start_policy(config),
        "ack_policy": config.get("ack_policy", "explicit"),
        "replay_policy": config.get("replay_policy", "instant"),
        "filter_subjects": ", ".join(filters_of(config)),
        "max_deliver": format_limit(config.get("max_deliver") or -1),
        "max_ack_pending": format_limit(config.get("max_ack_pending", 0)),
        "idle_heartbeat": format_duration(config.get("idle_heartbeat") or 0),
        "flow_control": stream_config.yes_no(bool(config.get("flow_control"))),
        "headers_only": stream_config.yes_no(bool(config.get("headers_only"))),
        "backoff": format_backoff(config.get("backoff") or []),
        "description": config.get("description", ""),
        "ack_wait": format_optional_duration(config.get("ack_wait")),
        "max_waiting": str(config.get("max_waiting") or ""),
        "max_batch": str(config.get("max_batch") or ""),
        "max_expires": format_optional_duration(config.get("max_expires")),
        "max_bytes": format_size(config["max_bytes"]) if config.get("max_bytes") else "",
        "inactive_threshold": format_optional_duration(config.get("inactive_threshold")),
        "sample_freq": (config.get("sample_freq") or "").rstrip("%"),
        "rate_limit_bps": str(config.get("rate_limit_bps") or ""),
        "num_replicas": str(config.get("num_replicas") or 0),
        "mem_storage": bool(config.get("mem_storage")),
        "metadata": format_metadata(config.get("metadata") or {}),
        "pause_until": (format_time(parse_time(config["pause_until"]))
                        if config.get("pause_until") else ""),
        "priority_policy": config.get("priority_policy") or "none",
        "priority_groups": ", ".join(config.get("priority_groups") or []),
        "priority_timeout": format_optional_duration(config.get("priority_timeout")),
    }


def api_keys(fields: list[str] | set[str]) -> list[str]:
    """The API keys behind these form fields."""
    return list(dict.fromkeys(key for name in fields for key in API_KEYS.get(name, (name,))))


def format_value(key: str, value: Any) -> str:
    """An API value the way the form shows it, for diffs and the consumer's details."""
    if value is None:
        value = ZERO.get(key)
    if key in _DURATION_KEYS:
        return format_duration(value or 0)
    if key == "backoff":
        return format_backoff(value or []) or "—"
    if key in _TIME_KEYS:
        return f"{format_time(parse_time(value))} UTC" if value else "—"
    if key == "max_bytes":
        return format_size(value) if value else "—"
    if key == "max_deliver":
        return format_limit(value or -1)
    if key == "metadata":
        return ", ".join(f"{k}={v}" for k, v in user_metadata(value or {}).items()) or "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    if value in (None, "", {}):
        return "—"
    return str(value)


def label_of_key(key: str) -> str:
    if key in ("deliver_policy", "opt_start_seq", "opt_start_time"):
        return {"deliver_policy": "Deliver policy", "opt_start_seq": "Start sequence",
                "opt_start_time": "Start time"}[key]
    return LABELS.get(FIELD_OF_KEY.get(key, key), key)


# Edits ----------------------------------------------------------------------------------------


def _comparable(key: str, value: Any) -> Any:
    if value is None:
        value = ZERO.get(key)
    if key == "metadata":
        return user_metadata(value or {})
    if key in _TIME_KEYS and value:
        return parse_time(value)
    if key == "sample_freq":
        return (value or "").rstrip("%")
    return value


def diff(current: dict[str, Any], desired: dict[str, Any], keys: list[str]) -> dict[str, list]:
    """{api_key: [current, new]} over the keys the form showed."""
    return {key: [current.get(key), desired.get(key)] for key in keys
            if _comparable(key, current.get(key)) != _comparable(key, desired.get(key))}


def apply(current: dict[str, Any], changes: dict[str, list[Any]]) -> dict[str, Any]:
    """The live config with only the changed keys replaced (the server's `_nats.*` metadata
    kept): what the form does not show goes back to the server untouched."""
    return stream_config.apply(current, changes)


def conflicts(current: dict[str, Any], changes: dict[str, list[Any]]) -> list[str]:
    """Keys someone else changed on the server since the form was read."""
    return [key for key, (old, _new) in changes.items()
            if _comparable(key, current.get(key)) != _comparable(key, old)]


def changed_since(seen: dict[str, Any], info: dict[str, Any]) -> str:
    """How the live consumer differs from the one seen (stream_config.sighting), or ""."""
    return stream_config.changed_since(seen, info, compare=diff, label=label_of_key)


def differs(live: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """The keys of a request the live config does not have as asked (the server fills in
    the rest)."""
    return [key for key in asked
            if _comparable(key, live.get(key)) != _comparable(key, asked[key])]


def read_only_reason(field: str, current: dict[str, Any], version: Version) -> str:
    """Why a field cannot change on this existing consumer ("" when it can): nats-server's
    checkNewConsumerConfig."""
    push = bool(current.get("deliver_subject"))
    reasons = {
        "durable_name": "A consumer cannot be renamed.",
        "start_policy": "Where a consumer starts is set at creation.",
        "ack_policy": "The acknowledgment policy is set at creation.",
        "replay_policy": "The replay policy is set at creation.",
        "idle_heartbeat": "Heartbeats are set at creation.",
        "flow_control": "Flow control is set at creation.",
        "max_waiting": "The limit of waiting pulls is set at creation.",
        "mem_storage": "Storage is chosen at creation.",
        "pause_until": "Use Pause and Resume on the stream's page.",
    }
    if field in reasons:
        return reasons[field]
    if field in {"deliver_subject", "deliver_group", "rate_limit_bps"} and not push:
        return "A pull consumer cannot become a push consumer."
    if field in {"max_batch", "max_expires", "max_bytes", "priority_policy", "priority_groups",
                 "priority_timeout"} and push:
        return "A push consumer takes no pull requests."
    if field == "filter_subjects" and version < (2, 10, 0):
        return "Filter subjects cannot change before nats-server 2.10."
    return ""


# Server rules ---------------------------------------------------------------------------------


Errors = Iterator[tuple[str, str]]  # (form field, message)


@dataclass(frozen=True)
class _Request:
    """A create or update the rules check: its config, the stream it belongs to, the server's
    version, and the consumer as it is (None for a create)."""

    config: dict[str, Any]
    stream: dict[str, Any]
    version: Version
    current: dict[str, Any] | None

    @property
    def push(self) -> bool:
        return bool(self.config.get("deliver_subject"))

    @property
    def ack_policy(self) -> str:
        return self.config.get("ack_policy", "explicit")


def _durable_name(request: _Request) -> Errors:
    if request.current is None:
        for message in name_errors(request.config.get("durable_name", ""), kind="consumer"):
            yield "durable_name", message


def _delivery_target(request: _Request) -> Errors:
    """One subject the stream does not store; a push consumer stays one."""
    if request.push:
        target = request.config["deliver_subject"]
        if error := subject_error(target):
            yield "deliver_subject", error
        elif {"*", ">"} & set(target.split(".")):
            yield "deliver_subject", "A delivery target is one subject, without wildcards."
        elif any(subjects_overlap(subject, target)
                 for subject in request.stream.get("subjects") or []):
            yield "deliver_subject", ("The stream stores this subject: delivering to it would "
                                      "form a cycle.")
    elif request.current is not None and request.current.get("deliver_subject"):
        yield "deliver_subject", "A push consumer cannot become a pull consumer."


def _queue_group(request: _Request) -> Errors:
    group = request.config.get("deliver_group")
    if group and not request.push:
        yield "deliver_group", "Only push consumers (with a delivery target) have a queue group."
    if group and (error := subject_error(group)):
        yield "deliver_group", error


def _filter_subjects(request: _Request) -> Errors:
    """Valid subjects; several only since 2.10, and then none overlapping another."""
    filters = filters_of(request.config)
    for subject in filters:
        if error := subject_error(subject):
            yield "filter_subjects", error
    if len(filters) > 1:
        if request.version < MULTIPLE_FILTERS_SINCE:
            yield "filter_subjects", "Several filter subjects need nats-server 2.10 or later."
        elif any(subjects_overlap(a, b) for i, a in enumerate(filters) for b in filters[i + 1:]):
            yield "filter_subjects", "Filter subjects must not overlap."


def _no_acks(request: _Request) -> Errors:
    """Without acknowledgments nothing is redelivered and nothing is pending."""
    if request.ack_policy != "none":
        return
    config = request.config
    if config.get("max_deliver", -1) not in (-1, 0):
        yield "max_deliver", "Without acknowledgments a message is delivered once: -1."
    if config.get("backoff"):
        yield "backoff", "Redeliveries need acknowledgments."
    if request.push and config.get("max_ack_pending", 0) > 0:
        yield "max_ack_pending", "Without acknowledgments nothing is pending: 0."


def _work_queue_acks(request: _Request) -> Errors:
    if request.ack_policy != "explicit" and request.stream.get("retention") == "workqueue":
        yield "ack_policy", "A work-queue stream needs explicit acknowledgments."


def _max_deliver(request: _Request) -> Errors:
    max_deliver = request.config.get("max_deliver", -1)
    if max_deliver == 0 or max_deliver < -1:
        yield "max_deliver", "At least 1, or -1 for unlimited."


def _backoff_deliveries(request: _Request) -> Errors:
    """A backoff needs the deliveries to use its steps."""
    backoff = request.config.get("backoff")
    if not backoff:
        return
    # 2.11 relaxed "more deliveries than steps" to "at least as many".
    room = len(backoff) if request.version >= (2, 11, 0) else len(backoff) + 1
    max_deliver = request.config.get("max_deliver", -1)
    if max_deliver != -1 and max_deliver < room:
        yield "max_deliver", f"At least {room} for a backoff of {len(backoff)} steps, or -1."


def _backoff_ack_wait(request: _Request) -> Errors:
    """The server takes a backoff's first step as the ack wait, whatever was asked (an edit that
    leaves the ack wait alone gets the new first step)."""
    backoff = request.config.get("backoff")
    wait = request.config.get("ack_wait")
    if (backoff and wait and wait != backoff[0]
            and (request.current is None or wait != request.current.get("ack_wait"))):
        yield "ack_wait", (f"With a backoff the ack wait is its first step "
                           f"({format_duration(backoff[0])}): leave it empty.")


def _idle_heartbeat(request: _Request) -> Errors:
    heartbeat = request.config.get("idle_heartbeat", 0)
    if heartbeat and not request.push:
        yield "idle_heartbeat", "Only push consumers send idle heartbeats: 0s or -1."
    elif 0 < heartbeat < MIN_HEARTBEAT_NS:
        yield "idle_heartbeat", "At least 100ms, or 0s for none."


def _flow_control(request: _Request) -> Errors:
    if not request.config.get("flow_control"):
        return
    if not request.push:
        yield "flow_control", "Only push consumers have flow control."
    elif not request.config.get("idle_heartbeat", 0):
        yield "flow_control", "Flow control needs an idle heartbeat."


def _pull_requests(request: _Request) -> Errors:
    if request.push:
        for field in ("max_waiting", "max_batch", "max_expires", "max_bytes"):
            if request.config.get(field):
                yield field, "Only pull consumers take pull requests: leave empty."


def _rate_limit(request: _Request) -> Errors:
    if not request.push and request.config.get("rate_limit_bps"):
        yield "rate_limit_bps", "Only push consumers have a rate limit."


def _max_expires(request: _Request) -> Errors:
    if 0 < request.config.get("max_expires", 0) < MIN_EXPIRES_NS:
        yield "max_expires", "At least 1ms."


def _replicas(request: _Request) -> Errors:
    """0 (as the stream) to 5, never more than the stream's; with interest or work-queue
    retention, as many as the stream's."""
    replicas = request.config.get("num_replicas", 0)
    stream_replicas = request.stream.get("num_replicas") or 1
    if not 0 <= replicas <= 5:
        yield "num_replicas", "0 (as the stream) to 5."
    elif replicas > stream_replicas:
        yield "num_replicas", f"At most as many as the stream ({stream_replicas})."
    elif (replicas and replicas != stream_replicas
          and request.stream.get("retention") in {"interest", "workqueue"}):
        yield "num_replicas", (f"With this retention, as many as the stream ({stream_replicas}) "
                               "or 0.")


def _description(request: _Request) -> Errors:
    if utf8_size(request.config.get("description", "")) > MAX_DESCRIPTION:
        yield "description", f"At most {MAX_DESCRIPTION} bytes."


def _metadata(request: _Request) -> Errors:
    metadata = request.config.get("metadata") or {}
    if sum(utf8_size(k) + utf8_size(v) for k, v in metadata.items()) > MAX_METADATA_BYTES:
        yield "metadata", "At most 128 KiB of keys and values."


def _priority_policy(request: _Request) -> Errors:
    if request.config.get("priority_policy", "none") != "none" and request.push:
        yield "priority_policy", "Priority groups are for pull consumers."


def _priority_groups(request: _Request) -> Errors:
    """A policy needs groups, each a valid group name; groups need a policy."""
    policy = request.config.get("priority_policy", "none")
    groups = request.config.get("priority_groups") or []
    if policy != "none":
        if not groups:
            yield "priority_groups", f"The {policy} policy needs at least one group."
        for group in groups:
            if not _GROUP_NAME.fullmatch(group):
                yield "priority_groups", f"“{group}”: 1 to 16 of A-Z a-z 0-9 - _ / =."
    elif groups:
        yield "priority_groups", "Choose a priority policy for these groups."


def _priority_timeout(request: _Request) -> Errors:
    if (request.config.get("priority_timeout")
            and request.config.get("priority_policy", "none") != "pinned_client"):
        yield "priority_timeout", "Only the pinned_client policy pins clients."


def _integer_ranges(request: _Request) -> Errors:
    for key, message in beyond_maximum(request.config, MAX_VALUE, format_value).items():
        yield FIELD_OF_KEY.get(key, key), message


# In the order their errors are listed, field by field.
_RULES: tuple[Callable[[_Request], Errors], ...] = (
    _durable_name, _delivery_target, _queue_group, _filter_subjects, _no_acks,
    _work_queue_acks, _max_deliver, _backoff_deliveries, _backoff_ack_wait, _idle_heartbeat,
    _flow_control, _pull_requests, _rate_limit, _max_expires, _replicas, _description,
    _metadata, _priority_policy, _priority_groups, _priority_timeout, _integer_ranges,
)


def rule_errors(
    config: dict[str, Any], *, stream: dict[str, Any], version: Version,
    current: dict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """The server's rules (checkConsumerCfg), checked before the server sees the config, with
    the stream it belongs to. Keys are form field names."""
    request = _Request(config, stream, version, current)
    errors: dict[str, list[str]] = {}
    for rule in _RULES:
        for field, message in rule(request):
            errors.setdefault(field, []).append(message)
    return errors


def pause_refusal(version: Version) -> str:
    """Why consumers cannot be paused on this server ("" when they can)."""
    if version < PAUSE_SINCE:
        return "Pausing a consumer needs nats-server 2.11 or later."
    return ""
