"""Stream definitions as natscli JSON files and between profiles: export, import (validated with
the create form's rules for the target's server version, then proposed as a plan), copy to
another profile, and restoring the version an audit entry changed. On real servers."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from nats.js.api import (
    DiscardPolicy,
    RePublish,
    RetentionPolicy,
    StorageType,
    StoreCompression,
    StreamConfig,
    StreamSource,
)

from streams import audit, stream_json
from streams.definitions import normalise
from streams.forms.transfer import ImportForm
from streams.models import AuditEvent, JobStatus, Plan, Profile, Stream, StreamDefinition
from streams.stream_config import parse_version
from streams.uploads import BoundedUpload
from tests.support.jobs import wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.pages import field_errors
from tests.support.plans import planned, restored
from tests.support.raw_jetstream import create_raw, live_config
from tests.support.stream_forms import create_stream, reviewed_edit, run_post
from tests.support.teams import member
from tests.support.versions import both_versions


@pytest.fixture
def target(db: Any, make_profile: Callable[..., Profile]) -> Profile:
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


# A one-file export and where its local header, central directory and end record start.
EXPORT = stream_json.zipped({"orders": {"name": "orders"}})
LOCAL, CENTRAL, END = (EXPORT.index(magic) for magic in (b"PK\x03\x04", b"PK\x01\x02",
                                                         b"PK\x05\x06"))


def damaged(*changes: tuple[int, bytes]) -> bytes:
    """The export with bytes overwritten at these offsets."""
    data = bytearray(EXPORT)
    for offset, value in changes:
        data[offset:offset + len(value)] = value
    return bytes(data)


def compressed_as(method: int) -> bytes:
    """The export claiming another compression method than the deflate it holds."""
    packed = struct.pack("<H", method)
    return damaged((LOCAL + 8, packed), (CENTRAL + 10, packed))


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


def test_an_export_unpacks_whole_on_any_file_system() -> None:
    # Stream names may differ only in case or Unicode form, or hold what Windows refuses.
    names = ["Orders", "orders", "caf\u00e9", "cafe\u0301", "a:b", "CON", "plain"]
    archive = zipfile.ZipFile(io.BytesIO(stream_json.zipped({n: {"name": n} for n in names})))
    assert archive.namelist() == ["Orders.json", "orders~2.json", "caf\u00e9.json",
                                  "cafe\u0301~2.json", "a_b.json", "_CON.json", "plain.json"]
    assert [json.loads(archive.read(path))["name"] for path in archive.namelist()] == names


def test_values_the_server_cannot_decode_are_refused_beside_their_field(
    target: Profile,
) -> None:
    """The form bounds a limit's positive side only (any negative one means no limit); a
    number beyond the server's Go integer fails its whole request as "invalid JSON"."""
    form = import_form(target, text=json.dumps([
        {"name": "s1", "max_bytes": -(2**63) - 1, "max_msgs": -5},
        {"name": "s2", "max_msg_size": -(2**31) - 1},
        {"name": "s3", "max_consumers": 2**63},
        {"name": "s4", "sources": [{"name": "s1"}, {"name": "s2", "opt_start_seq": -5}]},
        {"name": "s5", "mirror": {"name": "s1", "filter_subject": 3}},
        {"name": "s6", "persist_mode": "bogus"}]))
    assert form.desired == {}
    assert problems(form) == {
        ("pasted JSON #1", "Total Stream Size"): [
            "Expected a whole number from -9223372036854775808 to 9223372036854775807."],
        ("pasted JSON #2", "Max Message Size"): [
            "Expected a whole number from -2147483648 to 2147483647."],
        ("pasted JSON #3", "Maximum Consumers"): [
            "Expected a whole number from -9223372036854775808 to 9223372036854775807."],
        ("pasted JSON #4", "Sources"): [
            "“opt_start_seq”: expected a whole number from 0 to 18446744073709551615."],
        ("pasted JSON #5", "Mirror"): ["“filter_subject”: expected text."],
        ("pasted JSON #6", "persist_mode"): ["Expected one of default, async."],
    }


def test_values_the_form_would_tidy_are_judged_as_the_server_reads_them(
    target: Profile,
) -> None:
    """The server refuses " a" and "" as subjects ("invalid subject"), and a name with a
    space; read through the form's text they looked like "a", no subject at all, a name."""
    form = import_form(target, text=json.dumps([
        {"name": "s1", "subjects": [" padded"]}, {"name": "s2", "subjects": [""]},
        {"name": "s3 "}]))
    assert form.desired == {}
    assert problems(form) == {
        ("pasted JSON #1", "Subjects"): ["“ padded” contains white space."],
        ("pasted JSON #2", "Subjects"): [
            "“” has an empty token (leading, trailing or double dot)."],
        ("pasted JSON #3", "Stream Name"): ["Not allowed in a stream name: space."],
    }


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "bad.json: not valid JSON (Expecting property name enclosed in double "
                   "quotes: line 1 column 2 (char 1))."),
    (b"[" * 100_000 + b"]" * 100_000, "bad.json: nested too deeply to be a stream "
                                      "configuration."),
    (b'{"max_msgs": ' + b"9" * 5000 + b"}", "bad.json: not valid JSON (Exceeds the limit "
     "(4300 digits) for integer string conversion: value has 5000 digits; use "
     "sys.set_int_max_str_digits() to increase the limit)."),
    (b'{"name": "a", "subjects": ["a"], "subjects": ["b"]}',
     "bad.json: not valid JSON (“subjects” appears twice in one object)."),
    (b"\xff\xfe{}", "bad.json: not UTF-8 text."),
    (b"[]", "bad.json: an empty list."),
    (b"PK\x03\x04 truncated", "bad.json: not a readable zip file (File is not a zip file)."),
    (zipped({"bomb.json": b" " * (stream_json.MAX_BYTES + 1)}),
     "bad.json: more than 1,024 KiB once unpacked."),
    # Damaged one-file exports: each of these raised out of zipfile as a server error.
    (damaged((END + 16, struct.pack("<I", CENTRAL + 1))),
     "bad.json: not a readable zip file (negative seek value -1)."),
    (compressed_as(12), "bad.json: not a readable zip file (Invalid data stream)."),
    (damaged((CENTRAL + 46, b"\x00")),
     "bad.json: not a readable zip file (string index out of range)."),
    (damaged((LOCAL + 7, b"\x08"), (CENTRAL + 9, b"\x08"), (LOCAL + 30, b"\x80"),
             (CENTRAL + 46, b"\x80")),  # flagged UTF-8, the name is not
     "bad.json: not a readable zip file ('utf-8' codec can't decode byte 0x80 in position 0: "
     "invalid start byte)."),
    (compressed_as(99),
     "bad.json: not a readable zip file (That compression method is not supported)."),
    # JSON escapes of half a UTF-16 pair: the server would read U+FFFD in their place.
    (b'{"name": "\\ud800"}', "bad.json: not valid JSON (\\ud800 is half of a UTF-16 "
                             "surrogate pair, not a character)."),
    (zipped({"a.json": b'{"name": "a", "metadata": {"k": "x\\udfff"}}'}),
     "bad.json/a.json: not valid JSON (\\udfff is half of a UTF-16 surrogate pair, not a "
     "character)."),
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
    db: Any, make_profile: Callable[..., Profile],
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



# Through the screens, on real servers ---------------------------------------------------------


def applied(client: Client, plan: Plan) -> Plan:
    client.post(reverse("plan_apply", args=[plan.pk]), HTTP_HX_REQUEST="true")
    plan.refresh_from_db()
    job = wait_for_job(plan.apply_job_id, timeout=60)
    assert job.status == JobStatus.SUCCEEDED, job.error
    plan.refresh_from_db()
    return plan


def steps(plan: Plan) -> dict[str, tuple[str, dict[str, Any], dict[str, str]]]:
    return {step["name"]: (step["action"], step["changes"], step["refused"])
            for step in plan.steps or []}


def export(client: Client, profile: Profile, **data: Any) -> HttpResponse:
    return client.post(reverse("definitions_export", args=[profile.pk]), data)


class _Problems(HTMLParser):
    """The rows of the problems table: (stream, from, field, error), rowspans filled in."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: str | None = None
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and ("class", "problem") in attrs:
            self._inside = True
            self.rows.append([])
        elif tag == "td" and self._inside:
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "tr":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data


def problem_rows(html: str) -> list[tuple[str, ...]]:
    reader = _Problems()
    reader.feed(html)
    rows: list[tuple[str, ...]] = []
    for cells in reader.rows:
        rows.append(tuple(cells) if len(cells) == 4 else (*rows[-1][:2], *cells))
    return rows


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
@both_versions
def test_a_file_the_official_client_wrote_round_trips_through_import_apply_export(
    client_alice: Client, profile: Profile,
) -> None:
    """nats-py's StreamConfig, serialised as natscli writes its --config files: imported,
    applied, exported again, and every field the file set is the same."""
    url = profile.server_list[0]
    name = f"round_trip_{profile.pk}"
    create_raw(url, {"name": f"{name}_origin", "subjects": [f"{name}_origin.>"]})
    config = StreamConfig(
        name=name, description="orders, as the team defines them", subjects=[f"{name}.>"],
        storage=StorageType.MEMORY, retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.NEW, max_msgs=1000, max_msgs_per_subject=10,
        max_bytes=1 << 20, max_age=3600, max_msg_size=65536, duplicate_window=60,
        allow_rollup_hdrs=True, deny_delete=True, allow_direct=True,
        republish=RePublish(src=f"{name}.>", dest=f"copy.{name}.>", headers_only=True),
        sources=[StreamSource(name=f"{name}_origin", filter_subject=f"{name}_origin.a")])
    if parse_version(profile.last_server_version) >= (2, 10, 0):
        config.metadata = {"team": "core"}
        config.compression = StoreCompression.NONE
    written = json.dumps(config.as_dict(), indent=2)  # as natscli's json.MarshalIndent
    plan = planned(client_alice.post(reverse("definitions_import", args=[profile.pk]),
                                     {"files": [upload(f"{name}.json", written)]}))
    assert (plan.origin, steps(plan)) == ("import", {name: ("create", {}, {})})
    assert applied(client_alice, plan).outcomes[name]["outcome"] == "created"

    response = export(client_alice, profile, name=name)
    assert response["Content-Disposition"] == f'attachment; filename="{name}.json"'
    back, sent = json.loads(response.content), json.loads(written)
    # Every value the file set, exactly; the false ones the server leaves out, as false.
    chosen = {key: value for key, value in sent.items() if normalise(key, value) is not None}
    assert {key: back.get(key) for key in chosen} == chosen
    assert {key: normalise(key, back.get(key)) for key in sent.keys() - chosen.keys()} == \
        dict.fromkeys(sent.keys() - chosen.keys())
    assert "created" not in back


@pytest.mark.django_db
def test_export_leaves_out_what_only_the_server_writes_and_is_audited(
    client_alice: Client, target: Profile,
) -> None:
    answered = {"name": "a", "subjects": ["a.>"], "max_msgs": -1, "consumer_limits": {},
                "created": "2025-01-01T00:00:00Z",
                "metadata": {"team": "core", "_nats.ver": "2.15.1", "_nats.level": "5"}}
    StreamDefinition.objects.create(profile=target, name="a", config=answered)
    StreamDefinition.objects.create(profile=target, name="b", config={
        "name": "b", "metadata": {"_nats.req.level": "0"}})
    one = export(client_alice, target, name="a")
    assert json.loads(one.content) == {"name": "a", "subjects": ["a.>"], "max_msgs": -1,
                                       "consumer_limits": {}, "metadata": {"team": "core"}}
    every = export(client_alice, target, all="1")
    assert every["Content-Type"] == "application/zip"
    assert every["Content-Disposition"] == 'attachment; filename="production-streams.zip"'
    with zipfile.ZipFile(io.BytesIO(every.content)) as archive:
        files = {name: json.loads(archive.read(name)) for name in archive.namelist()}
    assert files == {"a.json": json.loads(one.content), "b.json": {"name": "b"}}
    entries = AuditEvent.objects.filter(action="definitions.exported").order_by("seq")
    assert [(e.actor_name, e.profile_name, e.after) for e in entries] == [
        ("alice", "production", {"streams": ["a"]}),
        ("alice", "production", {"streams": ["a", "b"]})]
    nothing = export(client_alice, target, name="nowhere")
    assert (nothing.status_code, entries.count()) == (400, 2)


@pytest.mark.django_db
def test_an_unmanaged_stream_exports_its_live_config_as_last_read(
    client_alice: Client, target: Profile,
) -> None:
    """As `nats stream info -j` shows it, without what only the server writes; a managed
    stream is its definition, whatever is live; system streams only when ticked."""
    live = {"name": "theirs", "subjects": ["theirs.>"], "max_msgs": -1,
            "metadata": {"_nats.ver": "2.15.1"}}
    for name, config, kind in [("theirs", live, ""), ("ours", {"name": "ours", "max_msgs": 9},
                                                      ""), ("KV_cfg", {"name": "KV_cfg"}, "kv")]:
        Stream.objects.create(profile=target, name=name, system_kind=kind, read_at=timezone.now(),
                              info={"config": config, "created": "2026-01-01T00:00:00Z"})
    StreamDefinition.objects.create(profile=target, name="ours",
                                    config={"name": "ours", "max_msgs": 5})
    one = export(client_alice, target, name="theirs")
    assert json.loads(one.content) == {"name": "theirs", "subjects": ["theirs.>"],
                                       "max_msgs": -1}
    every = export(client_alice, target, all="1")
    with zipfile.ZipFile(io.BytesIO(every.content)) as archive:
        files = {name: json.loads(archive.read(name)) for name in archive.namelist()}
    assert files == {"ours.json": {"name": "ours", "max_msgs": 5},
                     "theirs.json": json.loads(one.content)}
    assert export(client_alice, target, name="KV_cfg").status_code == 200
    entry = AuditEvent.objects.filter(action="definitions.exported").order_by("seq").last()
    assert entry.after == {"streams": ["KV_cfg"], "live": ["KV_cfg"]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_invalid_imports_are_answered_beside_stream_and_field_and_propose_nothing(
    client_alice: Client, profile: Profile,
) -> None:
    url = reverse("definitions_import", args=[profile.pk])
    page = client_alice.post(url, {"files": [upload("broken.json", b'{"name": "x",')]})
    assert page.status_code == 200
    assert "broken.json: not valid JSON" in field_errors(page.content.decode(), "files")
    page = client_alice.post(url, {"files": [upload("streams.json", json.dumps(
        [{"name": "a.b"}, {"name": "c", "storage": "tape"}]))]})
    assert page.status_code == 200
    assert problem_rows(page.content.decode()) == [
        ("a.b", "streams.json #1", "Stream Name", "Not allowed in a stream name: .."),
        ("c", "streams.json #2", "Storage",
         "Select a valid choice. tape is not one of the available choices.")]
    page = client_alice.post(url, {"text": " " * stream_json.MAX_BYTES + "{}"})
    assert page.status_code == 200
    assert "At most 1,024 KiB in all." in field_errors(page.content.decode(), "text")
    assert not Plan.objects.exists()


@pytest.mark.parametrize("document", [
    {"name": "\ud800"},  # this one was a server error, its name measured in bytes
    [{"name": "a"}, {"name": "b", "subjects": ["b.\udc00"]}],
    {"name": "a", "\udbff": 1},
])
def test_a_lone_surrogate_anywhere_is_refused_beside_the_import_field(
    client_alice: Client, target: Profile, document: Any,
) -> None:
    text = json.dumps(document)  # writes the surrogate as a \\u escape, as pasted JSON has it
    page = client_alice.post(reverse("definitions_import", args=[target.pk]), {"text": text})
    assert page.status_code == 200
    assert "pasted JSON: not valid JSON (\\u" in field_errors(page.content.decode(), "text")
    assert "is half of a UTF-16 surrogate pair, not a character)." in field_errors(
        page.content.decode(), "text")
    assert not Plan.objects.exists()


def test_a_large_upload_is_refused_by_its_size_and_never_spooled_to_disk(
    client_alice: Client, profile: Profile, settings: Any, tmp_path: Any,
) -> None:
    # Django's own handlers would write this file to FILE_UPLOAD_TEMP_DIR whole first: one
    # that cannot be written to would fail the request.
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "not-there")
    large = b"[" + b" " * (5 * stream_json.MAX_BYTES) + b"]"
    page = client_alice.post(reverse("definitions_import", args=[profile.pk]),
                             {"files": [upload("large.json", large)]})
    assert page.status_code == 200
    assert "At most 1,024 KiB in all." in field_errors(page.content.decode(), "files")
    handler = BoundedUpload()
    handler.new_file("files", "large.json", "application/json", len(large))
    for start in range(0, len(large), 64 * 1024):
        handler.receive_data_chunk(large[start:start + 64 * 1024], start)
    kept = handler.file_complete(len(large))
    assert kept.size == len(large) and len(kept.read()) == stream_json.MAX_BYTES + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_definitions_copied_to_another_profile_are_planned_there_as_creates(
    client_alice: Client, nats_server: NatsServer, nats_29_server: NatsServer,
    make_profile: Callable[..., Profile],
) -> None:
    staging = make_profile(nats_server, name="staging", last_server_version=nats_server.version)
    production = make_profile(nats_29_server, name="production",
                              last_server_version=nats_29_server.version)
    for name in ("copied_a", "copied_b", "not_ticked"):
        job = create_stream(client_alice, staging, name=name, subjects=f"{name}.>",
                            max_msgs="100")
        assert job.status == JobStatus.SUCCEEDED, job.error
    url = reverse("definitions_copy", args=[staging.pk])
    page = client_alice.post(url, {"name": ["copied_a", "copied_b", "unknown"]})
    assert page.status_code == 200  # the list's submit: the page, to choose where to
    assert "2 definitions" in page.content.decode()
    plan = planned(client_alice.post(url, {"name": ["copied_a", "copied_b"],
                                           "target": production.pk}))
    assert (plan.profile, plan.origin) == (production, "copy from staging")
    assert steps(plan) == {"copied_a": ("create", {}, {}), "copied_b": ("create", {}, {})}
    # What 2.15 filled in that 2.9 does not know was left at its default: not proposed.
    assert plan.desired["copied_a"] == {
        key: value for key, value in StreamDefinition.objects.get(
            profile=staging, name="copied_a").config.items()
        if key not in {"metadata", "compression", "consumer_limits", "allow_msg_ttl"}}
    page = client_alice.post(url, {"name": ["copied_a"], "target": staging.pk})
    assert "Select a valid choice" in field_errors(page.content.decode(), "target")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
@both_versions
def test_restoring_an_audited_change_plans_back_exactly_the_fields_it_changed(
    client_alice: Client, profile: Profile,
) -> None:
    name = f"restored_{profile.pk}"
    assert create_stream(client_alice, profile, name=name, subjects=f"{name}.>",
                         max_msgs="100", description="before").status == JobStatus.SUCCEEDED
    edit = reverse("stream_edit", args=[profile.pk, name])
    job = run_post(client_alice, edit, reviewed_edit(client_alice, profile, name,
                                                     max_msgs="200", description="after"))
    assert job.status == JobStatus.SUCCEEDED, job.error
    entry = AuditEvent.objects.get(action="stream.changed", target_name=name)
    assert set(entry.changes) == {"max_msgs", "description"}
    detail = client_alice.get(reverse("audit_detail", args=[entry.seq])).content.decode()
    assert "Restore this version" in detail
    plan = planned(client_alice.post(reverse("audit_restore", args=[entry.seq])))
    assert plan.origin == f"restore of audit #{entry.seq}"
    assert steps(plan) == {name: ("update", {"max_msgs": [200, 100],
                                             "description": ["after", "before"]}, {})}
    applied(client_alice, plan)
    live = live_config(profile.server_list[0], name)
    assert (live["max_msgs"], live["description"]) == (100, "before")
    created = AuditEvent.objects.get(action="stream.created", target_name=name)
    assert "Restore this version" not in client_alice.get(
        reverse("audit_detail", args=[created.seq])).content.decode()
    assert client_alice.post(reverse("audit_restore", args=[created.seq])).status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_restoring_an_audited_deletion_plans_the_stream_back(
    client_alice: Client, profile: Profile,
) -> None:
    name = f"deleted_{profile.pk}"
    assert create_stream(client_alice, profile, name=name, subjects=name,
                         max_msgs="100").status == JobStatus.SUCCEEDED
    job = run_post(client_alice, reverse("stream_delete", args=[profile.pk, name]),
                   {"confirm_name": name})
    assert job.status == JobStatus.SUCCEEDED, job.error
    entry = AuditEvent.objects.get(action="stream.deleted", target_name=name)

    plan = restored(client_alice, entry.seq)
    assert steps(plan) == {name: ("create", {}, {})}
    assert plan.desired[name]["max_msgs"] == 100


@pytest.mark.django_db
def test_every_transfer_needs_its_role(client: Client, target: Profile,
                                      make_profile: Callable[..., Profile]) -> None:
    """A viewer exports and may open the copy page, but neither imports, copies into a
    connection nor restores a version: those plan changes, an operator's work."""
    staging = make_profile("nats://127.0.0.1:1", name="staging", team=target.team)
    viewer = member(target.team, "viewer", "viewer")
    StreamDefinition.objects.create(profile=target, name="a", config={"name": "a"})
    entry = AuditEvent.objects.record("stream.changed", audit.Context(), target_type="stream",
                                      target_name="a", profile=target, outcome="succeeded",
                                      before={"name": "a"}, after={"name": "a"})
    export_url = reverse("definitions_export", args=[target.pk])
    assert client.post(export_url, {"all": "1"}).status_code == 302  # to the login page
    client.force_login(viewer)
    assert client.post(export_url, {"all": "1"}).status_code == 200
    assert client.get(reverse("definitions_import", args=[target.pk])).status_code == 403
    copy = client.post(reverse("definitions_copy", args=[target.pk]),
                       {"target": staging.pk, "name": ["a"]})
    assert copy.status_code == 200 and "Select a valid choice" in copy.content.decode()
    assert client.post(reverse("audit_restore", args=[entry.seq])).status_code == 403
    assert not Plan.objects.exists()
    # Two refusals in a burst: the first is in the log, the second counted (streams.refusals).
    assert AuditEvent.objects.filter(action="permission.denied").count() == 1
