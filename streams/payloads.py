"""A message's payload: its size as the server counts it against max_payload, and how it is
shown: pretty JSON when it parses, text when it is UTF-8, hex otherwise, from the preview the
worker kept (never the whole of a large message)."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from decimal import Decimal

from streams.stream_config import lone_surrogate, utf8_size

# nats-server's default max_payload: the most the dashboard publishes, body and headers (the
# worker checks the server's own limit too, which may be lower), and what Django's limit on a
# request's form data is made from (settings.DATA_UPLOAD_MAX_MEMORY_SIZE).
MAX_PAYLOAD = 1024 * 1024
HEX_BYTES = 1024  # of a binary payload, shown as hex
PRETTY_CHARS = 64 * 1024  # of indented JSON; the preview is 16 KiB


@dataclass(frozen=True)
class Shown:
    kind: str  # "json", "text", "binary" or "empty"
    text: str
    truncated: bool  # the page shows a part of the payload


def published_headers(stream: str, headers: dict[str, str]) -> dict[str, str]:
    """The headers a publish sends: the user's, and the stream the message must land in."""
    return {**headers, "Nats-Expected-Stream": stream}


def size(data: bytes, headers: dict[str, str]) -> int:
    """What the server counts against max_payload: the body and the headers block as nats-py
    writes it."""
    lines = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    return len(data) + utf8_size(f"NATS/1.0\r\n{lines}\r\n")


def show(preview: str, size: int) -> Shown:
    data = base64.b64decode(preview)
    truncated = len(data) < size
    if not data:
        return Shown("empty", "", False)
    text = _utf8(data, truncated)
    if text is None:
        chunk = data[:HEX_BYTES]
        return Shown("binary", " ".join(chunk[i:i + 16].hex(" ")
                                        for i in range(0, len(chunk), 16)),
                     truncated or len(data) > HEX_BYTES)
    if not truncated and (pretty := _pretty(text)) is not None:
        return Shown("json", pretty, False)
    return Shown("text", text, truncated)


def _pretty(text: str) -> str | None:
    """The JSON indented; None when it is not JSON, nests deeper than the parser goes, would
    grow far past the text (indents grow with depth), has a number a float would show
    otherwise than written (1e400 as Infinity, 0.10000000000000000001 as 0.1), or half a
    UTF-16 pair (\\ud800, which unescaped is no character a page can hold)."""
    try:
        pretty = json.dumps(json.loads(text, parse_float=_exact_float), indent=2,
                            ensure_ascii=False)
    except (ValueError, RecursionError):
        return None
    return pretty if len(pretty) <= PRETTY_CHARS and not lone_surrogate(pretty) else None


def _exact_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number) or Decimal(repr(number)) != Decimal(literal):
        raise ValueError(f"{literal} is not a float")
    return number


def _utf8(data: bytes, truncated: bool) -> str | None:
    """The text, or None for binary. A preview cut inside a character loses that character
    only; control characters other than whitespace make it binary."""
    for cut in range(4 if truncated else 1):
        try:
            text = data[:len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(ord(char) < 32 and char not in "\t\n\r" for char in text):
            return None
        return text
    return None
