"""Hostile and malformed input: no value gives a server error, and every value refused is
refused beside its field. Fuzzed with hypothesis over the stream, purge and profile forms and
their endpoints; every field of the stream, consumer and message forms has a value known to be
wrong there, which must be refused beside it; the defects found by hand are kept as named
cases."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from streams import stream_json
from streams.forms.consumers import ConsumerForm, PauseConsumerForm
from streams.forms.messages import BrowseForm, MessageForm, PublishForm
from streams.forms.profiles import ProfileForm
from streams.forms.streams import PurgeForm, StreamForm
from streams.forms.transfer import ImportForm
from streams.models import Consumer, Job, JobKind, Plan, Profile, Stream, StreamDefinition, Team
from tests.support.consumer_forms import SEED_CONSUMER
from tests.support.hostile import FUZZ, NASTY, VALUES
from tests.support.pages import field_errors
from tests.support.stream_forms import SEED_FORM

STREAM_FIELDS = [name for name in StreamForm.base_fields if name != "sealed"]
HIDDEN = "a\u202eb"  # a right-to-left override inside a word
NOT_A_CHOICE = "Select a valid choice."
# For every field a browser can send something wrong in, a value that is wrong there and what
# is said beside the field: a fuzzer that draws it must see it refused there.
STREAM_BAD: dict[str, tuple[str, str]] = {
    "name": ("a b", "Not allowed in a stream name: space."),
    "subjects": ("foo..bar", "has an empty token"),
    "storage": ("disk", NOT_A_CHOICE),
    "num_replicas": ("0", "greater than or equal to 1"),
    "retention": ("forever", NOT_A_CHOICE),
    "discard": ("oldest", NOT_A_CHOICE),
    "max_msgs": ("-2", "is not a whole number (or -1 for unlimited)"),
    "max_msgs_per_subject": ("1.5", "is not a whole number (or -1 for unlimited)"),
    "max_bytes": ("-2", "is not a size"),
    "max_age": ("-2", "is not a duration"),
    "max_msg_size": ("10 bytes", "is not a size"),
    "duplicate_window": ("2 minutes", "is not a duration"),
    "allow_rollup_hdrs": ("true", NOT_A_CHOICE),
    "allow_delete": ("1", NOT_A_CHOICE),
    "allow_purge": ("on", NOT_A_CHOICE),
    "description": (HIDDEN, "Invisible or control characters: U+202E."),
    "max_consumers": ("-2", "is not a whole number (or -1 for unlimited)"),
    "compression": ("gzip", NOT_A_CHOICE),
    "first_seq": ("-1", "greater than or equal to 0"),
    "subject_transform_src": (HIDDEN, "Invisible or control characters: U+202E."),
    "subject_transform_dest": ("x" * 1025, "at most 1024 characters"),
    "republish_src": (HIDDEN, "Invisible or control characters: U+202E."),
    "republish_dest": ("a\x00b", "Null characters are not allowed."),
    "placement_cluster": (HIDDEN, "Invisible or control characters: U+202E."),
    "placement_tags": (HIDDEN, "Invisible or control characters: U+202E."),
    "mirror": (HIDDEN, "Invisible or control characters: U+202E."),
    "sources": (HIDDEN, "Invisible or control characters: U+202E."),
    "metadata": ("owner", "write one key=value per line."),
    "subject_delete_marker_ttl": ("soon", "is not a duration"),
}
# Checkboxes: any value sent means ticked, so none is wrong.
STREAM_CHECKBOXES = {"discard_new_per_subject", "allow_direct", "mirror_direct",
                     "republish_headers_only", "no_ack", "allow_msg_ttl"}


def fuzzed(fields: list[str], bad: dict[str, tuple[str, str]]) -> st.SearchStrategy[Any]:
    """A field and a value for it: a generated one (which may be valid) or its known-bad one."""
    return st.sampled_from(fields).flatmap(lambda field: st.tuples(
        st.just(field), VALUES | st.just(bad[field][0]) if field in bad else VALUES))


def assert_known_bad_refused(form: Any, field: str, value: str,
                             bad: dict[str, tuple[str, str]], checkboxes: set[str]) -> None:
    """A value known to be wrong in `field` (its known-bad one, or any holding a NUL, which no
    field but a checkbox takes) is refused beside that field, not accepted."""
    if (field in bad and value == bad[field][0]) or ("\x00" in value and field not in checkboxes):
        assert field in form.errors, (field, value, form.errors)


@pytest.fixture
def profile(db: Any) -> Profile:
    return Profile.objects.create(name="fuzzed", servers="nats://127.0.0.1:4222",
                                  last_server_version="2.15.1")


def assert_refused_beside_a_field(form: Any) -> None:
    """An invalid form names the fields at fault: an error with no field is no help."""
    assert form.errors, "expected the value to be refused"
    assert set(form.errors) - {"__all__"}, form.errors


@FUZZ
@given(case=fuzzed(STREAM_FIELDS, STREAM_BAD))
def test_stream_form_refuses_bad_values_beside_their_field(
    client_alice: Client, profile: Profile, case: tuple[str, str],
) -> None:
    field, value = case
    data = {**SEED_FORM, "name": "fuzzed", field: value}
    form = StreamForm(data, profile=profile)
    assert_known_bad_refused(form, field, value, STREAM_BAD, STREAM_CHECKBOXES)
    if not form.is_valid():
        assert_refused_beside_a_field(form)
    url = reverse("stream_create", args=[profile.pk])
    response = client_alice.post(f"{url}?validate={field}", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode()
    for error in form.errors.get(field, []):
        assert html.escape(error) in row
    assert not Job.objects.exists()


CONSUMER_FIELDS = list(ConsumerForm.base_fields)
CONSUMER_BAD: dict[str, tuple[str, str]] = {
    "durable_name": ("a b", "Not allowed in a consumer name: space."),
    "deliver_subject": ("a b", "contains white space"),
    "deliver_group": (HIDDEN, "Invisible or control characters: U+202E."),
    "start_policy": ("first", "give all, new, last, subject, a stream sequence"),
    "ack_policy": ("sometimes", NOT_A_CHOICE),
    "replay_policy": ("fast", NOT_A_CHOICE),
    "filter_subjects": ("foo..bar", "has an empty token"),
    "max_deliver": ("-2", "is not a whole number (or -1 for unlimited)"),
    "max_ack_pending": ("lots", "is not a whole number (or -1 for unlimited)"),
    "idle_heartbeat": ("-2", "is not a duration"),
    "flow_control": ("true", NOT_A_CHOICE),
    "headers_only": ("1", NOT_A_CHOICE),
    "backoff": ("1m, soon", "is not a duration"),
    "description": (HIDDEN, "Invisible or control characters: U+202E."),
    "ack_wait": ("30", "is not a duration"),
    "max_waiting": ("-2", "is not a whole number (or -1 for unlimited)"),
    "max_batch": ("1e3", "is not a whole number (or -1 for unlimited)"),
    "max_expires": ("-2", "is not a duration"),
    "max_bytes": ("-2", "is not a size"),
    "inactive_threshold": ("an hour", "is not a duration"),
    "sample_freq": ("-1", "greater than or equal to 0"),
    "rate_limit_bps": ("-2", "is not a whole number (or -1 for unlimited)"),
    "num_replicas": ("-1", "greater than or equal to 0"),
    "metadata": ("owner", "write one key=value per line."),
    "pause_until": ("tomorrow", "is not a duration"),
    "priority_policy": ("first", NOT_A_CHOICE),
    "priority_groups": (HIDDEN, "Invisible or control characters: U+202E."),
    "priority_timeout": ("-2", "is not a duration"),
}
CONSUMER_CHECKBOXES = {"mem_storage"}
FUZZED_STREAM = {"name": "fuzzed_stream", "subjects": ["fz.*"], "num_replicas": 1,
                 "retention": "limits"}


@FUZZ
@given(case=fuzzed(CONSUMER_FIELDS, CONSUMER_BAD))
def test_consumer_form_refuses_bad_values_beside_their_field(
    client_alice: Client, profile: Profile, case: tuple[str, str],
) -> None:
    field, value = case
    Stream.objects.get_or_create(profile=profile, name="fuzzed_stream", defaults={
        "info": {"config": FUZZED_STREAM}, "read_at": timezone.now()})
    data = {**SEED_CONSUMER, "durable_name": "fuzzed", field: value}
    form = ConsumerForm(data, profile=profile, stream=FUZZED_STREAM)
    assert_known_bad_refused(form, field, value, CONSUMER_BAD, CONSUMER_CHECKBOXES)
    if not form.is_valid():
        assert_refused_beside_a_field(form)
    url = reverse("consumer_create", args=[profile.pk, "fuzzed_stream"])
    response = client_alice.post(f"{url}?validate={field}", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode()
    for error in form.errors.get(field, []):
        assert html.escape(error) in row
    pause = PauseConsumerForm({"pause_until": value})
    if not pause.is_valid():
        assert "pause_until" in pause.errors
    assert not Job.objects.exists()


def test_every_field_has_a_known_bad_value_or_is_a_checkbox() -> None:
    """So a field added to a form gets its known-bad case, or says why it has none."""
    assert set(STREAM_BAD) | STREAM_CHECKBOXES == set(STREAM_FIELDS)
    assert set(CONSUMER_BAD) | CONSUMER_CHECKBOXES == set(CONSUMER_FIELDS)
    assert set(BROWSE_BAD) == set(BrowseForm.base_fields)
    assert set(PUBLISH_BAD) == set(PublishForm.base_fields)


def row_of(html: str, field: str) -> str:
    """The form row of `field` in a form region: its label, input and errors."""
    return html.split(f'id="row-{field}"')[1].split("</div>")[0]


@pytest.mark.parametrize(("field", "value", "message"),
                         [(field, *case) for field, case in STREAM_BAD.items()])
def test_known_bad_stream_values_are_refused_beside_their_field(
    client_alice: Client, profile: Profile, field: str, value: str, message: str,
) -> None:
    form = StreamForm({**SEED_FORM, "name": "fuzzed", field: value}, profile=profile)
    assert not form.is_valid() and message in " ".join(form.errors.get(field, [])), form.errors
    response = client_alice.post(reverse("stream_create", args=[profile.pk]),
                                 {**SEED_FORM, "name": "fuzzed", field: value},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert html.escape(message) in row_of(response.content.decode(), field)
    assert not Job.objects.exists()


@pytest.mark.parametrize(("field", "value", "message"),
                         [(field, *case) for field, case in CONSUMER_BAD.items()])
def test_known_bad_consumer_values_are_refused_beside_their_field(
    client_alice: Client, profile: Profile, field: str, value: str, message: str,
) -> None:
    data = {**SEED_CONSUMER, "durable_name": "fuzzed", field: value}
    form = ConsumerForm(data, profile=profile, stream=FUZZED_STREAM)
    assert not form.is_valid() and message in " ".join(form.errors.get(field, [])), form.errors
    Stream.objects.create(profile=profile, name="fuzzed_stream",
                          info={"config": FUZZED_STREAM}, read_at=timezone.now())
    response = client_alice.post(reverse("consumer_create", args=[profile.pk, "fuzzed_stream"]),
                                 data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert html.escape(message) in row_of(response.content.decode(), field)
    assert not Job.objects.exists()


@FUZZ
@given(field=st.sampled_from(["mode", "subject", "keep", "seq", "seen"]), value=VALUES)
def test_purge_form_refuses_bad_values_beside_their_field(field: str, value: str) -> None:
    form = PurgeForm({"mode": "keep", "keep": "5", "seq": "9", "subject": "a.b", field: value})
    if not form.is_valid():
        assert_refused_beside_a_field(form)


PROFILE_FORM = {"name": "fuzz", "servers": "nats://127.0.0.1:4222", "broker_kind": "nats",
                "connect_timeout": "2", "auth_method": "none"}
PROFILE_FIELDS = ["name", "description", "broker_kind", "servers", "connect_timeout",
                  "js_domain", "js_api_prefix", "auth_method", "username", "password", "token",
                  "nkey_seed", "creds", "tls_ca", "tls_server_name"]


@FUZZ
@given(field=st.sampled_from(PROFILE_FIELDS), value=VALUES)
def test_profile_form_refuses_bad_values_beside_their_field(
    client_alice: Client, field: str, value: str,
) -> None:
    data = {**PROFILE_FORM, field: value}
    form = ProfileForm(data, teams=Team.objects.filter(pk=Team.objects.default().pk))
    valid = form.is_valid()
    if not valid:
        assert_refused_beside_a_field(form)
    response = client_alice.post(reverse("profile_create"), data)
    assert response.status_code in {200, 302}
    assert (response.status_code == 302) is valid
    Profile.objects.all().delete()  # the next example may use the same name


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_msgs", "²", "is not a whole number"),
    ("max_msgs", "①", "is not a whole number"),
    ("max_msgs", "9" * 5000, "At most 64 characters"),
    ("max_msgs", "9223372036854775808", "At most 9223372036854775807."),
    ("max_msg_size", "2147483648", "At most 2147483647."),
    ("max_bytes", "٣KB", "is not a size"),
    ("max_age", "9999999999999999999s", "At most 2562047h47m16.854775807s."),
    ("first_seq", "18446744073709551616", "less than or equal to 18446744073709551615"),
    ("subjects", "a\x00b", "Null characters are not allowed."),
    ("subjects", "a\u200bb", "invisible or control characters: U+200B"),
    ("name", "orders\u202etxt", "Invisible or direction-changing characters"),
    ("name", "KV_settings", "key-value bucket stream"),
    ("name", "OBJ_files", "object store stream"),
    ("name", "$memphis_dls", "Memphis system stream"),
    ("mirror", "up\u200bstream", "Invisible or control characters: U+200B."),
])
def test_defects_found_by_hand_are_refused_beside_their_field(
    client_alice: Client, profile: Profile, field: str, value: str, message: str,
) -> None:
    response = client_alice.post(reverse("stream_create", args=[profile.pk]),
                                 {**SEED_FORM, field: value}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode().split(f'id="row-{field}"')[1].split("</div>")[0]
    assert html.escape(message) in row
    assert not Job.objects.exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("start_policy", "99999999999999999999ms", "past the end of the calendar"),
    ("pause_until", "99999999999999999999ms", "past the end of the calendar"),
    ("start_policy", "2026-13-01", "is not a time"),
    # In the calendar as written, past its ends in UTC: these raised OverflowError.
    ("start_policy", "0001-01-01T00:00:00+01:00", "past the end of the calendar"),
    ("pause_until", "9999-12-31T23:59:59-01:00", "past the end of the calendar"),
    ("durable_name", "worker\u202etxt", "Invisible or control characters: U+202E."),
    # Every duration within Go's time.Duration (int64 nanoseconds), a backoff's steps too.
    ("backoff", "1m, 9999999999999h", "Each at most 2562047h47m16.854775807s."),
    ("ack_wait", "9999999999999h", "At most 2562047h47m16.854775807s."),
    ("inactive_threshold", "9999999999999h", "At most 2562047h47m16.854775807s."),
    ("max_expires", "9999999999999h", "At most 2562047h47m16.854775807s."),
    ("idle_heartbeat", "9999999999999h", "At most 2562047h47m16.854775807s."),
    ("priority_timeout", "9999999999999h", "At most 2562047h47m16.854775807s."),
])
def test_consumer_defects_found_by_hand_are_refused_beside_their_field(
    client_alice: Client, profile: Profile, field: str, value: str, message: str,
) -> None:
    Stream.objects.create(profile=profile, name="fuzzed_stream",
                          info={"config": FUZZED_STREAM}, read_at=timezone.now())
    response = client_alice.post(reverse("consumer_create", args=[profile.pk, "fuzzed_stream"]),
                                 {**SEED_CONSUMER, "durable_name": "ok", field: value},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode().split(f'id="row-{field}"')[1].split("</div>")[0]
    assert html.escape(message) in row
    assert not Job.objects.exists()


@pytest.mark.parametrize("job", ["abc", "1e3", "٣", "-1", "99999999999999999999999"])
def test_a_malformed_job_number_is_not_found(
    client_alice: Client, profile: Profile, job: str,
) -> None:
    response = client_alice.get(reverse("stream_create", args=[profile.pk]), {"job": job})
    assert response.status_code == 404


def test_an_address_naming_another_objects_job_is_not_found(
    client_alice: Client, profile: Profile,
) -> None:
    # ?job= shows a job's outcome as this page's: "orders was updated" must be about orders.
    for name in ("orders", "other"):
        Stream.objects.create(profile=profile, name=name, read_at=timezone.now(),
                              info={"config": {**FUZZED_STREAM, "name": name}})
    update = Job.objects.create(kind=JobKind.STREAM_UPDATE, profile=profile,
                                profile_name=profile.name, target="orders",
                                params={"changes": {}})
    consumer = Job.objects.create(kind=JobKind.CONSUMER_UPDATE, profile=profile,
                                  profile_name=profile.name, target="orders",
                                  params={"consumer": "billing", "changes": {}})
    pages = [("stream_edit", ["other"], update), ("consumer_edit", ["other", "billing"], consumer),
             ("consumer_edit", ["orders", "shipping"], consumer),
             ("consumer_create", ["other"], consumer)]
    for view, args, job in pages:
        url = reverse(view, args=[profile.pk, *args])
        assert client_alice.get(url, {"job": job.pk}).status_code == 404, (view, args)
    url = reverse("stream_edit", args=[profile.pk, "orders"])
    assert client_alice.get(url, {"job": update.pk}).status_code == 200


LIST_PARAMS = {
    "audit_list": ["actor", "action", "target_type", "target", "profile", "outcome", "since",
                   "until", "q", "before", "after", "page"],
    "job_list": ["status", "kind", "profile", "page"],
    "stream_list": ["q", "subject", "sort", "page", "system", "sync"],
}
DATES = st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "2026-11-30", "²⁰²⁶-01-01"])


def test_the_last_possible_day_is_a_valid_audit_filter(client_alice: Client) -> None:
    response = client_alice.get(reverse("audit_list"), {"until": "9999-12-31"})
    assert response.status_code == 200


@pytest.mark.parametrize("page", list(LIST_PARAMS))
@FUZZ
@given(data=st.data())
def test_list_filters_never_give_a_server_error(
    client_alice: Client, profile: Profile, page: str, data: st.DataObject,
) -> None:
    query = data.draw(st.fixed_dictionaries({}, optional={
        name: st.one_of(VALUES, DATES) for name in LIST_PARAMS[page]}))
    args = [profile.pk] if page == "stream_list" else []
    for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client_alice.get(reverse(page, args=args), query, **htmx)
        assert response.status_code == 200, (page, query)


# Text holding half a UTF-16 pair, as JSON's "\ud800" decodes: high halves only, so two never
# make a pair.
HALVES = st.tuples(st.text(max_size=4), st.text(st.characters(min_codepoint=0xD800,
                                                                max_codepoint=0xDBFF),
                                                  min_size=1, max_size=2),
                   st.text(max_size=4)).map("".join)
JSON_TEXT = st.text(max_size=20) | HALVES
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.sampled_from(NASTY) | JSON_TEXT,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8) | HALVES, children, max_size=3),
    max_leaves=8)


def has_half(document: Any) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in json.dumps(document, ensure_ascii=False))


@FUZZ
@given(config=st.dictionaries(
    st.sampled_from([*stream_json.TYPES, "name", "bogus", "bo\udbffgus"]), JSON_VALUES,
    max_size=6))
def test_imported_configs_of_any_shape_are_refused_beside_stream_and_field(
    profile: Profile, config: dict[str, Any],
) -> None:
    document = {"name": "fuzzed", **config}
    form = ImportForm({"text": json.dumps(document)}, {}, profile=profile)
    if has_half(document):  # a 500 when it reached a name measured in bytes
        assert list(form.errors) == ["text"], form.errors
        assert "half of a UTF-16 surrogate pair" in form.errors["text"][0]
    elif not form.is_valid():
        assert form.problems or set(form.errors) - {"__all__"}, form.errors
        assert all(label or message.startswith("Not a stream") for problem in form.problems
                   for label, message in problem.errors), form.problems


EXPORT = stream_json.zipped({"orders": {"name": "orders", "subjects": ["orders.>"]}})
# The export with each byte changed (its lowest bit flipped, or all of them), and cut short at
# every length: zipfile raised ValueError, OSError, IndexError, UnicodeDecodeError on some.
DAMAGED = [*(EXPORT[:at] + bytes([EXPORT[at] ^ mask]) + EXPORT[at + 1:]
             for at in range(len(EXPORT)) for mask in (0x01, 0xFF)),
           *(EXPORT[:length] for length in range(1, len(EXPORT)))]


def test_every_damaged_export_is_refused_beside_the_files_field_or_read(
    client_alice: Client, profile: Profile,
) -> None:
    url = reverse("definitions_import", args=[profile.pk])
    refused = 0
    for data in DAMAGED:
        form = ImportForm({"text": ""}, {"files": [SimpleUploadedFile("orders.zip", data)]},
                          profile=profile)
        response = client_alice.post(url, {"files": [SimpleUploadedFile("orders.zip", data)]})
        if form.is_valid():  # what was changed is still a config (a letter of its name)
            assert response.status_code == 302, data
            continue
        assert response.status_code == 200, data
        assert set(form.errors) <= {"files", "__all__"}, (data, form.errors)
        page = response.content.decode()
        for message in form.errors.get("files", []):
            assert message.startswith("orders.zip"), message
            assert message in html.unescape(field_errors(page, "files")), message
            refused += 1
        assert all(label for problem in form.problems for label, _message in problem.errors)
    assert refused > len(DAMAGED) // 2  # most damage leaves no readable archive


BROWSE_BAD: dict[str, tuple[str, str]] = {
    "seq": ("-2", "A sequence number: digits only."),
    "subject": ("foo..bar", "has an empty token"),
    "at": ("yesterday", "Enter a valid date/time."),
}
PUBLISH_BAD: dict[str, tuple[str, str]] = {
    "subject": ("elsewhere", "Not a subject of this stream (fz.*)."),
    "headers": ("Order-Id 42", "Line 1: write it as Name: value."),
    "payload": ("a\x00b", "Null characters are not allowed."),
}
PUBLISHED = {"seq": "payload", "at": "headers"}  # the publish field each browse field fuzzes


@FUZZ
@given(case=fuzzed(["seq", "subject", "at"], BROWSE_BAD))
def test_message_forms_refuse_bad_values_beside_their_field(case: tuple[str, str]) -> None:
    field, value = case
    browse = BrowseForm({"seq": "1", "subject": "fz.a", "at": "", field: value})
    assert_known_bad_refused(browse, field, value, BROWSE_BAD, set())
    if not browse.is_valid():
        assert_refused_beside_a_field(browse)
    else:
        assert 1 <= browse.params["start"] <= 2**64 - 1
    one = MessageForm({"seq": value})
    if field == "seq":
        assert_known_bad_refused(one, "seq", value, BROWSE_BAD, set())
    if not one.is_valid():
        assert "seq" in one.errors
    published = PUBLISHED.get(field, field)
    publish = PublishForm({"subject": "fz.a", "headers": "", "payload": "", published: value},
                          stream="fz", subjects=["fz.*"])
    assert_known_bad_refused(publish, published, value, PUBLISH_BAD, set())
    if not publish.is_valid():
        assert_refused_beside_a_field(publish)


@pytest.fixture
def fuzzed_stream(profile: Profile) -> Stream:
    return Stream.objects.create(profile=profile, name="fuzzed_stream", subjects=["fz.*"],
                                 info={"config": {**FUZZED_STREAM, "name": "fz"}},
                                 read_at=timezone.now())


@pytest.mark.parametrize(("field", "value", "message"),
                         [(field, *case) for field, case in BROWSE_BAD.items()])
def test_known_bad_browse_values_are_refused_with_their_field(
    client_alice: Client, profile: Profile, fuzzed_stream: Stream, field: str, value: str,
    message: str,
) -> None:
    form = BrowseForm({"seq": "1", "subject": "fz.a", "at": "", field: value})
    assert not form.is_valid() and message in " ".join(form.errors.get(field, [])), form.errors
    response = client_alice.post(reverse("message_browse", args=[profile.pk, "fuzzed_stream"]),
                                 {"seq": "1", "subject": "fz.a", field: value},
                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    # The results region names the field at fault before what is wrong with it.
    label = BrowseForm.base_fields[field].label
    assert f"<p>{label}: " in response.content.decode()
    assert html.escape(message) in response.content.decode().split(f"<p>{label}: ")[1]
    if field == "seq":  # a message's own forms take the same sequence numbers
        assert message in MessageForm({"seq": value}).errors["seq"][0]
    assert not Job.objects.exists()


@pytest.mark.parametrize(("field", "value", "message"),
                         [(field, *case) for field, case in PUBLISH_BAD.items()])
def test_known_bad_publish_values_are_refused_beside_their_field(
    client_alice: Client, profile: Profile, fuzzed_stream: Stream, field: str, value: str,
    message: str,
) -> None:
    data = {"subject": "fz.a", "headers": "", "payload": "", field: value}
    form = PublishForm(data, stream="fz", subjects=["fz.*"])
    assert not form.is_valid() and message in " ".join(form.errors.get(field, [])), form.errors
    response = client_alice.post(reverse("message_publish", args=[profile.pk, "fuzzed_stream"]),
                                 data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert html.escape(message) in field_errors(response.content.decode(), field)
    assert not Job.objects.exists()


# The POST endpoints past the forms fuzzed above, with what each reads from the request.
ENDPOINTS = {
    "message_browse": ["seq", "subject", "at"],
    "message_delete": ["seq", "confirm"],
    "message_download": ["seq"],
    "message_publish": ["subject", "headers", "payload"],
    "plan_create": ["scope", "delete_missing", "confirm", "name", "q", "subject", "sync",
                    "sort", "system"],
    "plan_apply": ["confirm"],
    "stream_adopt": ["matching", "name", "q", "subject", "sync", "system"],
    "definitions_export": ["all", "name"],
    "definitions_copy": ["target", "name", "all"],
    "consumer_pause": ["pause_until"],
    "consumer_resume": [],
    "stream_plan": [],
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@FUZZ
@given(data=st.data())
def test_posts_never_give_a_server_error(
    client_alice: Client, profile: Profile, endpoint: str, data: st.DataObject,
    redis_server: Any, settings: Any,
) -> None:
    settings.JOB_WAIT = 0  # what a valid post submits only waits in Redis: no worker here
    Stream.objects.get_or_create(profile=profile, name="fuzzed_stream", defaults={
        "info": {"config": FUZZED_STREAM}, "read_at": timezone.now(),
        "subjects": ["fz.*"]})
    StreamDefinition.objects.get_or_create(profile=profile, name="fuzzed_stream",
                                           defaults={"config": FUZZED_STREAM})
    Consumer.objects.get_or_create(profile=profile, stream_name="fuzzed_stream", name="fuzzed",
                                   defaults={"read_at": timezone.now()})
    plan, _ = Plan.objects.get_or_create(profile=profile, defaults={
        "desired": {"fuzzed_stream": FUZZED_STREAM}, "origin": "fuzz", "steps": []})
    args = {"plan_apply": [plan.pk], "plan_create": [profile.pk], "stream_adopt": [profile.pk],
            "definitions_export": [profile.pk], "definitions_copy": [profile.pk]}.get(
        endpoint, [profile.pk, "fuzzed_stream"])
    if endpoint.startswith("consumer_"):
        args = [profile.pk, "fuzzed_stream", "fuzzed"]
    body = data.draw(st.fixed_dictionaries({}, optional={
        name: st.one_of(VALUES, st.lists(VALUES, max_size=3)) for name in ENDPOINTS[endpoint]}))
    for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client_alice.post(reverse(endpoint, args=args), body, **htmx)
        assert response.status_code < 500, (endpoint, body, response.status_code)
