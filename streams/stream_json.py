"""Stream configs as files: the JSON `nats stream add --config FILE` reads (one StreamConfig per
file, the JetStream API's own shape), written for export and read back for import.

Pure: no database, no broker. natscli reads one object per file (a StreamConfig, or the
StreamInfo `nats stream info --json` prints, whose `config` it takes), so several streams
travel as a .zip of such files, and imports accept those, a single file, or a JSON array."""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zipfile
from typing import Any

from streams.naming import lone_surrogate
from streams.stream_config import (
    FIELD_OF_KEY,
    SINCE,
    Version,
    user_metadata,
)

Config = dict[str, Any]

MAX_BYTES = 1 << 20  # what an import may hold in all, uncompressed
MAX_STREAMS = 1000

# In a server's answer but not part of what one sends: a strict server (2.10+) refuses unknown
# keys on create, so these never leave the dashboard.
SERVER_ONLY = {"created"}

# Options the server has that the form does not offer, with the version that brought them.
SERVER_OPTIONS: dict[str, Version] = {
    "consumer_limits": (2, 10, 0),
    "allow_msg_counter": (2, 12, 0),
    "allow_atomic": (2, 12, 0),
    "allow_msg_schedules": (2, 12, 0),
    "persist_mode": (2, 12, 0),
}

# Each key's JSON type, as the server's Go struct decodes it (a wrong one fails the whole
# request as invalid JSON there): read before anything formats the values for the form.
_STR, _INT, _BOOL, _DICT = str, int, bool, dict
TYPES: dict[str, type] = {
    "name": _STR, "description": _STR, "storage": _STR, "retention": _STR, "discard": _STR,
    "compression": _STR, "persist_mode": _STR,
    "num_replicas": _INT, "max_msgs": _INT, "max_msgs_per_subject": _INT, "max_bytes": _INT,
    "max_age": _INT, "max_msg_size": _INT, "duplicate_window": _INT, "max_consumers": _INT,
    "first_seq": _INT, "subject_delete_marker_ttl": _INT,
    "allow_rollup_hdrs": _BOOL, "deny_delete": _BOOL, "deny_purge": _BOOL, "no_ack": _BOOL,
    "discard_new_per_subject": _BOOL, "allow_direct": _BOOL, "mirror_direct": _BOOL,
    "allow_msg_ttl": _BOOL, "sealed": _BOOL, "allow_msg_counter": _BOOL, "allow_atomic": _BOOL,
    "allow_msg_schedules": _BOOL,
    "subjects": list, "sources": list, "subject_transform": _DICT, "republish": _DICT,
    "placement": _DICT, "mirror": _DICT, "metadata": _DICT, "consumer_limits": _DICT,
}
# Members of objects and lists the form reads: {key: {member: type}}; list items are objects
# except for subjects (strings).
MEMBERS: dict[str, dict[str, type]] = {
    "subject_transform": {"src": _STR, "dest": _STR},
    "republish": {"src": _STR, "dest": _STR, "headers_only": _BOOL},
    "placement": {"cluster": _STR, "tags": list},
    "mirror": {"name": _STR, "opt_start_seq": _INT, "opt_start_time": _STR,
               "filter_subject": _STR, "external": _DICT},
    "sources": {"name": _STR, "opt_start_seq": _INT, "opt_start_time": _STR,
                "filter_subject": _STR, "external": _DICT},
}
# The Go integer each key decodes into (int64 unless named here): a number outside it fails the
# whole request as invalid JSON (a 2.9 server says no more), and the form bounds only the
# positive side of limits whose "no limit" is any negative number.
_INT64 = (-(1 << 63), (1 << 63) - 1)
RANGES = {"max_msg_size": (-(1 << 31), (1 << 31) - 1), "first_seq": (0, (1 << 64) - 1),
          "opt_start_seq": (0, (1 << 64) - 1)}
# The words a server option the form does not offer takes (the form checks its own choices):
# anything else fails the request with "can not unmarshal".
WORDS = {"persist_mode": ("default", "async")}
# Durations are nanoseconds; the server refuses a negative one (0 is "no limit").
DURATIONS = ("max_age", "duplicate_window", "subject_delete_marker_ttl")
_TYPE_NAMES = {str: "text", int: "a whole number", bool: "true or false", dict: "an object",
               list: "a list"}


class FileError(ValueError):
    """A file that holds no stream configs we can read; the message says why."""


# Export ----------------------------------------------------------------------------------------


def portable(config: Config) -> Config:
    """A config as one sends it to create the stream: without what only the server writes
    (its `_nats.*` metadata included)."""
    clean = {key: value for key, value in config.items() if key not in SERVER_ONLY}
    if "metadata" in clean:
        metadata = user_metadata(clean["metadata"] or {})
        if metadata:
            clean["metadata"] = metadata
        else:
            del clean["metadata"]
    return clean


def dumps(config: Config) -> bytes:
    return (json.dumps(portable(config), indent=2, ensure_ascii=False) + "\n").encode()


# What a stream name may hold and Windows refuses in a file name; and the names it keeps for
# devices whatever their extension.
_UNSAFE = re.compile(r'[<>:"|?*\x00-\x1f]')
_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT")
                                         for n in range(1, 10))}


def file_name(name: str) -> str:
    """A stream's file: its name, made safe on every file system (the config inside names the
    stream, so an import never reads the file name)."""
    stem = _UNSAFE.sub("_", name)
    return f"{'_' if stem.upper() in _DEVICES else ''}{stem}.json"


def zipped(configs: dict[str, Config]) -> bytes:
    """One `<name>.json` per stream, each one a `nats stream add --config` file. Names that
    one file system tells apart and another does not (Orders and orders; é composed or not)
    get a number, so unpacking keeps every file."""
    buffer, taken = io.BytesIO(), set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, config in configs.items():
            path = stem = file_name(name).removesuffix(".json")
            number = 1
            while (key := unicodedata.normalize("NFC", path).casefold()) in taken:
                number += 1
                path = f"{stem}~{number}"
            taken.add(key)
            archive.writestr(f"{path}.json", dumps(config))
    return buffer.getvalue()


# Import ----------------------------------------------------------------------------------------


def read(name: str, data: bytes) -> list[tuple[str, Any]]:
    """The configs in one uploaded file as (where, config): a .zip of JSON files, a JSON file
    of one config or a list of them. `where` names the file (and the place in it). The
    configs are whatever the JSON held: type_errors() tells what is wrong with each."""
    if data[:4] == b"PK\x03\x04":
        return _unzipped(name, data)
    return parse(name, _text(name, data))


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError(f"{name}: not UTF-8 text.") from None


def parse(where: str, text: str) -> list[tuple[str, Any]]:
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise FileError(f"{where}: nested too deeply to be a stream configuration.") from None
    except ValueError as exc:  # JSONDecodeError, and integers of more than 4,300 digits
        raise FileError(f"{where}: not valid JSON ({exc}).") from None
    if surrogate := _lone_surrogate(document):
        # The server's decoder would read U+FFFD in its place: not what the file says.
        raise FileError(f"{where}: not valid JSON (\\u{ord(surrogate):04x} is half of a "
                        "UTF-16 surrogate pair, not a character).")
    if isinstance(document, list):
        if not document:
            raise FileError(f"{where}: an empty list.")
        return [(f"{where} #{index}", config) for index, config in enumerate(document, 1)]
    return [(where, document)]


def _lone_surrogate(document: Any) -> str:
    """The first lone surrogate in the document's keys and texts, or "" (a JSON escape such
    as \\ud800 without its other half)."""
    pending = [document]
    while pending:  # no recursion: the document may nest as deep as the parser went
        item = pending.pop()
        if isinstance(item, str):
            if surrogate := lone_surrogate(item):
                return surrogate
        elif isinstance(item, dict):
            pending += [*item, *item.values()]
        elif isinstance(item, list):
            pending += item
    return ""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The last of two values would win (as in the server's Go decoder) unseen by whoever
    # reads the file: which one was meant is for its author to say.
    document: dict[str, Any] = {}
    for key, value in pairs:  # one pass: an object may hold a hundred thousand keys
        if key in document:
            raise ValueError(f"“{key}” appears twice in one object")
        document[key] = value
    return document


def _unzipped(name: str, data: bytes) -> list[tuple[str, Any]]:
    configs = []
    for filename, content in _members(name, data):
        where = f"{name}/{filename}"
        configs += parse(where, _text(where, content))  # a zip inside is no config file
    return configs


def _members(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """Each file of an archive with its content, read no further than the bounds."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_STREAMS:
            raise FileError(f"{name}: more than {MAX_STREAMS:,} files.")
        contents, total = [], 0
        for info in members:
            # Read no more than the bound, whatever the archive claims: a small zip can hold
            # gigabytes.
            with archive.open(info) as member:
                content = member.read(MAX_BYTES - total + 1)
            total += len(content)
            if total > MAX_BYTES:
                raise FileError(f"{name}: more than {MAX_BYTES // 1024:,} KiB once unpacked.")
            contents.append((info.filename, content))
        return contents
    except FileError:
        raise
    except Exception as exc:
        # zipfile fails on a damaged archive in ways with no common base: BadZipFile,
        # EOFError, NotImplementedError (compression), RuntimeError (encrypted), zlib.error,
        # OSError (bz2), ValueError (a negative seek, a name that is not UTF-8), IndexError,
        # OverflowError… Nothing but zipfile runs here.
        raise FileError(f"{name}: not a readable zip file ({exc}).") from None


def unwrapped(document: Any) -> Any:
    """natscli takes the `config` of a `nats stream info --json` output; so do we."""
    if isinstance(document, dict) and isinstance(document.get("config"), dict):
        return document["config"]
    return document


def type_errors(config: Any) -> dict[str, list[str]]:
    """What the server would refuse as invalid JSON or an unknown field: {api key: messages}
    ("" for the config as a whole)."""
    if not isinstance(config, dict):
        return {"": ["Not a stream configuration: expected a JSON object."]}
    errors: dict[str, list[str]] = {}
    for key, value in config.items():
        expected = TYPES.get(key)
        if key in SERVER_ONLY or value is None:
            continue
        if expected is None:
            errors[key] = [f"“{key}” is not a stream setting."]
        elif not _is(value, expected):
            errors[key] = [f"Expected {_TYPE_NAMES[expected]}."]
        elif expected is int and (wanted := _outside_range(key, value)):
            errors[key] = [f"Expected {wanted}."]
        elif message := _member_error(key, value):
            errors[key] = [message]
        elif key in DURATIONS and value < 0:
            errors[key] = ["A duration is at least 0 (0 means no limit)."]
        elif key in WORDS and value not in WORDS[key]:
            errors[key] = [f"Expected one of {', '.join(WORDS[key])}."]
    return errors


def _outside_range(key: str, number: int) -> str:
    """The range of the Go integer `key` decodes into, when `number` is outside it."""
    low, high = RANGES.get(key, _INT64)
    return "" if low <= number <= high else f"a whole number from {low} to {high}"


def _is(value: Any, expected: type) -> bool:
    # JSON true is a Python int too; a float is never a Go integer here.
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _member_error(key: str, value: Any) -> str:
    if key == "subjects":
        return _text_list(value)
    if key == "metadata":
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return "Expected text keys and values."
        # The form holds metadata as key=value lines.
        if any("=" in k or "\n" in k + v or "\r" in k + v for k, v in value.items()):
            return "Keys cannot contain “=”, nor keys or values line breaks."
        return ""
    members = MEMBERS.get(key)
    if members is None:
        return ""
    for item in value if key == "sources" else [value]:
        if not isinstance(item, dict):
            return "Expected a list of objects."
        for member, expected in members.items():
            if item.get(member) is None:
                continue
            if not _is(item[member], expected):
                return f"“{member}”: expected {_TYPE_NAMES[expected]}."
            if expected is int and (wanted := _outside_range(member, item[member])):
                return f"“{member}”: expected {wanted}."
            if expected is list and (error := _text_list(item[member])):
                return f"“{member}”: {error}"
    return ""


def _text_list(items: list[Any]) -> str:
    return "" if all(isinstance(item, str) for item in items) else "Expected a list of text."


def since(key: str) -> Version:
    """The server version an option needs (the form's gates, then the server's own options)."""
    return SINCE.get(FIELD_OF_KEY.get(key, key)) or SERVER_OPTIONS.get(key) or (0, 0, 0)
