"""A message's payload: its size as the server counts it against max_payload, and how it is
shown, as natscli and NUI show it: in a list, one line (JSON compacted, text with its line
breaks as spaces, binary as a short hex+ASCII preview); on its own page, pretty JSON when it
parses, text when it is UTF-8, and a hex dump with offsets and ASCII (as `xxd` prints it) for
any payload. Always from the part the worker kept, never the whole of a large message."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal

from streams.naming import lone_surrogate, utf8_size

# nats-server's default max_payload: the most the dashboard publishes, body and headers (the
# worker checks the server's own limit too, which may be lower), and what Django's limit on a
# request's form data is made from (settings.DATA_UPLOAD_MAX_MEMORY_SIZE).
MAX_PAYLOAD = 1024 * 1024
HEX_BYTES = 4096  # of a payload, dumped as hex on its page: 256 lines
PRETTY_CHARS = 64 * 1024  # of indented JSON
LINE_CHARS = 160  # of a list's one-line preview; the cell ellipsises what its width cannot hold
LINE_BYTES = 16  # of a binary payload, in a list's preview: one xxd line


@dataclass(frozen=True)
class DumpLine:
    offset: str  # "00000010"
    hex: str  # "3c73 6372 6970 743e ..." in pairs of bytes, as xxd groups them
    ascii: str  # printable ASCII, "." for any other byte


@dataclass(frozen=True)
class Shown:
    kind: str  # "json", "text", "binary" or "empty"
    text: str  # for binary, the list's preview; a page shows `dump`
    truncated: bool  # the page shows a part of the payload
    dump: list[DumpLine] = field(default_factory=list)  # the first HEX_BYTES (a page's only)
    part: int = 0  # bytes of the payload a page shows


def published_headers(stream: str, headers: dict[str, str]) -> dict[str, str]:
    """The headers a publish sends: the user's, and the stream the message must land in."""
    return {**headers, "Nats-Expected-Stream": stream}


def size(data: bytes, headers: dict[str, str]) -> int:
    """What the server counts against max_payload: the body and the headers block as nats-py
    writes it."""
    lines = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    return len(data) + utf8_size(f"NATS/1.0\r\n{lines}\r\n")


def show(kept: str, size: int) -> Shown:
    """The payload on its own page: `kept` (base64) is its first bytes, `size` the whole."""
    data = base64.b64decode(kept)
    truncated = len(data) < size
    dump = hex_dump(data[:HEX_BYTES])
    if not data:
        return Shown("empty", "", False)
    text = _utf8(data, truncated)
    if text is None:
        return Shown("binary", "", truncated or len(data) > HEX_BYTES, dump,
                     min(len(data), HEX_BYTES))
    if not truncated and (pretty := _json(text, indent=2)) is not None:
        return Shown("json", pretty, False, dump, len(data))
    return Shown("text", text, truncated, dump, len(data))


def line(kept: str, size: int) -> Shown:
    """The payload as one line of a list: compact JSON, text with its whitespace runs as one
    space, or binary as `xxd` shows its first 16 bytes."""
    data = base64.b64decode(kept)
    truncated = len(data) < size
    if not data:
        return Shown("empty", "", False)
    text = _utf8(data, truncated)
    if text is None:
        [first] = hex_dump(data[:LINE_BYTES])
        return Shown("binary", f"{first.hex}  {first.ascii}", len(data) > LINE_BYTES)
    if not truncated and (compact := _json(text, indent=None)) is not None:
        kind, text = "json", compact
    else:
        kind, text = "text", " ".join(text.split())
    return Shown(kind, text[:LINE_CHARS], truncated or len(text) > LINE_CHARS)


def hex_dump(data: bytes) -> list[DumpLine]:
    """`xxd`'s lines: offset, 16 bytes in pairs, and those bytes as ASCII."""
    return [DumpLine(f"{start:08x}",
                     " ".join(data[pair:pair + 2].hex()
                              for pair in range(start, min(start + 16, len(data)), 2)),
                     "".join(chr(byte) if 32 <= byte < 127 else "."
                             for byte in data[start:start + 16]))
            for start in range(0, len(data), 16)]


def _json(text: str, indent: int | None) -> str | None:
    """The JSON indented, or on one line; None when it is not JSON, nests deeper than the
    parser goes, would grow far past the text (indents grow with depth), has a number a float
    would show otherwise than written (1e400 as Infinity, 0.10000000000000000001 as 0.1), or
    half a UTF-16 pair (\\ud800, which unescaped is no character a page can hold)."""
    try:
        shown = json.dumps(json.loads(text, parse_float=_exact_float), indent=indent,
                           ensure_ascii=False)
    except (ValueError, RecursionError):
        return None
    return shown if len(shown) <= PRETTY_CHARS and not lone_surrogate(shown) else None


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
