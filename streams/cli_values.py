"""Values typed the way the nats CLI takes them and prints them back: durations (`2m0s`,
`1h30m`, `500ms`, `7d`), sizes (`1GB`, `512MiB`), counts and limits (`-1` for unlimited), and the
ranges of the Go integers the server decodes numbers into.

Pure functions; what each stream or consumer field means lives in stream_config and
consumer_config."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

NS = 1_000_000_000
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
MAX_TYPED = 64  # characters in a typed number, size or duration: more is no real value


class ParseError(ValueError):
    """A value the CLI would not accept either; the message is shown beside the field."""


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
