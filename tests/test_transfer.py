"""Stream definitions as natscli JSON files and between profiles: export, import (validated with
the create form's rules for the target's server version, then proposed as a plan), copy to
another profile, and restoring the version an audit entry changed. On real servers."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from streams import stream_json
from streams.forms.transfer import ImportForm
from streams.models import AuditEvent, Profile, StreamDefinition

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(make_profile: Callable[..., Profile]) -> Profile:
    """A profile whose server version is known (2.15); nothing here talks to it."""
    return make_profile("nats://127.0.0.1:1", name="production", last_server_version="2.15.1")


def upload(name: str, content: bytes | str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content,
                              content_type="application/json")


def import_form(profile: Profile, *files: SimpleUploadedFile, text: str = "") -> ImportForm:
    form = ImportForm({"text": text}, {"files": list(files)}, profile=profile)
    form.is_valid()
    return form


def problems(form: ImportForm) -> dict[tuple[str, str], list[str]]:
    """{(where, field label): [messages]}."""
    found: dict[tuple[str, str], list[str]] = {}
    for problem in form.problems:
        for label, message in problem.errors:
            found.setdefault((problem.where, label), []).append(message)
    return found


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_a_file_natscli_reads_a_list_a_zip_and_a_stream_info_are_all_read(
    target: Profile,
) -> None:
    info = json.dumps({"config": {"name": "from_info", "subjects": ["i.>"]}, "state": {},
                       "created": "2025-01-01T00:00:00Z"})
    form = import_form(
        target,
        upload("one.json", json.dumps({"name": "one", "subjects": ["one.>"]})),
        upload("many.zip", zipped({"a.json": b'{"name": "a"}', "b.json": b'{"name": "b"}'})),
        upload("info.json", info),
        text=json.dumps([{"name": "pasted_1"}, {"name": "pasted_2", "storage": "memory"}]))
    assert form.errors == {}, (form.errors, form.problems)
    assert form.desired == {
        "one": {"name": "one", "subjects": ["one.>"]}, "a": {"name": "a"}, "b": {"name": "b"},
        "from_info": {"name": "from_info", "subjects": ["i.>"]}, "pasted_1": {"name": "pasted_1"},
        "pasted_2": {"name": "pasted_2", "storage": "memory"}}


def test_invalid_configs_are_refused_beside_their_stream_and_field(target: Profile) -> None:
    form = import_form(
        target,
        upload("good.json", '{"name": "good"}'),
        upload("bad.json", json.dumps([
            {"name": "dotted.name"},
            {"name": "s2", "storage": "tape", "num_replicas": 9},
            {"name": "s3", "max_age": "1h", "max_msgs": 1.5, "maxmsgs": 5},
            {"name": "s4", "max_age": 10**9, "duplicate_window": 3600 * 10**9},
            {"name": "s5", "description": "nul\x00here", "sealed": True},
            {"name": "good"},
            "not an object"])))
    assert form.desired == {"good": {"name": "good"}}
    assert form.errors["__all__"] == [
        "7 of 8 stream configs cannot be used as they are: nothing was proposed. Correct them "
        "(below) and try again."]
    assert problems(form) == {
        ("bad.json #1", "Stream Name"): ["Not allowed in a stream name: .."],
        ("bad.json #2", "Storage"): [
            "Select a valid choice. tape is not one of the available choices."],
        ("bad.json #2", "Replication"): ["Ensure this value is less than or equal to 5."],
        ("bad.json #3", "Message TTL"): ["Expected a whole number."],
        ("bad.json #3", "Stream Messages Limit"): ["Expected a whole number."],
        ("bad.json #3", "maxmsgs"): ["“maxmsgs” is not a stream setting."],
        ("bad.json #4", "Duplicate tracking time window"): [
            "Must not exceed the Message TTL (1s)."],
        ("bad.json #5", "Description"): ["Null characters are not allowed."],
        ("bad.json #5", "Sealed"): ["A stream cannot be created sealed."],
        ("bad.json #6", "Stream Name"): ["Also in good.json: one config per stream."],
        ("bad.json #7", ""): ["Not a stream configuration: expected a JSON object."],
    }


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "bad.json: not valid JSON (Expecting property name enclosed in double "
                   "quotes: line 1 column 2 (char 1))."),
    (b"[" * 100_000 + b"]" * 100_000, "bad.json: nested too deeply to be a stream "
                                      "configuration."),
    (b'{"max_msgs": ' + b"9" * 5000 + b"}", "bad.json: not valid JSON (Exceeds the limit "
     "(4300 digits) for integer string conversion: value has 5000 digits; use "
     "sys.set_int_max_str_digits() to increase the limit)."),
    (b"\xff\xfe{}", "bad.json: not UTF-8 text."),
    (b"[]", "bad.json: an empty list."),
    (b"PK\x03\x04 truncated", "bad.json: not a readable zip file (File is not a zip file)."),
    (zipped({"bomb.json": b" " * (stream_json.MAX_BYTES + 1)}),
     "bad.json: more than 1,024 KiB once unpacked."),
])
def test_unreadable_files_are_refused_beside_the_files_field(
    target: Profile, content: bytes, message: str,
) -> None:
    form = import_form(target, upload("bad.json", content))
    assert form.errors == {"files": [message]}
    assert form.desired == {}


def test_too_much_is_refused_before_it_is_read(target: Profile) -> None:
    big = " " * stream_json.MAX_BYTES + "{}"
    assert import_form(target, upload("big.json", big)).errors == {
        "files": ["At most 1,024 KiB in all."]}
    assert import_form(target, text=big).errors == {"text": ["At most 1,024 KiB in all."]}
    many = json.dumps([{"name": f"s{n}"} for n in range(stream_json.MAX_STREAMS + 1)])
    assert import_form(target, text=many).errors == {
        "__all__": ["1,001 streams: at most 1,000 at once."]}
    assert import_form(target).errors == {"__all__": ["Choose a file or paste JSON."]}


def test_options_the_target_server_lacks_are_refused_unless_left_at_their_default(
    make_profile: Callable[..., Profile],
) -> None:
    old = make_profile("nats://127.0.0.1:1", name="old", last_server_version="2.9.10")
    answered_by_215 = {"name": "s", "compression": "none", "allow_msg_ttl": False,
                       "consumer_limits": {}, "metadata": {"_nats.level": "5"}}
    form = import_form(old, text=json.dumps([answered_by_215, {
        "name": "t", "compression": "s2", "metadata": {"team": "core"}}]))
    assert problems(form) == {
        ("pasted JSON #2", "Message Compression"): [
            "Needs nats-server 2.10.0; old runs 2.9.10."],
        ("pasted JSON #2", "Metadata"): ["Needs nats-server 2.10.0; old runs 2.9.10."]}
    assert import_form(old, text=json.dumps(answered_by_215)).desired == {"s": {"name": "s"}}
