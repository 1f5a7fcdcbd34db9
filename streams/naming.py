"""Names and subjects as the server takes them: stream and consumer names, subjects and when
two of them overlap, their size in bytes on the wire, and the characters that would not show as
themselves (hidden ones, and lone surrogates a JSON text can hold).

Pure functions, shared by the stream and consumer translators, the forms, the imports and the
advisory listener."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 255
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
