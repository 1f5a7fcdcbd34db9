"""How a message's payload is shown: pretty JSON when it parses, text when it is UTF-8, hex
otherwise, from the preview the worker kept (never the whole of a large message)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

HEX_BYTES = 1024  # of a binary payload, shown as hex


@dataclass(frozen=True)
class Shown:
    kind: str  # "json", "text", "binary" or "empty"
    text: str
    truncated: bool  # the page shows a part of the payload


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
    if not truncated:
        try:
            return Shown("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False),
                         False)
        except ValueError:
            pass
    return Shown("text", text, truncated)


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
