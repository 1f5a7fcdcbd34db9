"""JetStream counts and sequences are unsigned 64-bit numbers: every one the broker can send is
stored, listed and shown, on SQLite and on PostgreSQL (tests/test_postgres.py runs this file
there too), and a failure while recording an outcome ends the job with the truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from streams.models import AuditEvent, JobStatus, Profile, Stream
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import create_raw, live_config, publish
from tests.support.stream_forms import create_stream, refresh_list

pytestmark = pytest.mark.django_db(transaction=True)

UINT64_MAX = 2**64 - 1


@pytest.fixture
def profile(make_profile: Callable[..., Profile], nats_server: NatsServer) -> Profile:
    return make_profile(nats_server, last_server_version=nats_server.version)


def test_unsigned_64_bit_numbers_round_trip_and_keep_their_order(
    make_profile: Callable[..., Profile],
) -> None:
    profile = make_profile("nats://127.0.0.1:4222")
    for name, seq in (("zero", 0), ("middle", 2**63 - 1), ("half", 2**63), ("top", UINT64_MAX)):
        Stream.objects.create(profile=profile, name=name, first_seq=seq, last_seq=seq,
                              messages=seq, bytes=seq, consumers=seq, read_at=timezone.now())
    top = Stream.objects.get(name="top")
    assert (top.first_seq, top.last_seq, top.messages, top.bytes, top.consumers) == (
        UINT64_MAX,) * 5
    assert list(Stream.objects.order_by("first_seq").values_list("name", flat=True)) == [
        "zero", "middle", "half", "top"]
    assert list(Stream.objects.filter(last_seq__gte=2**63).order_by("name")
                .values_list("name", flat=True)) == ["half", "top"]
    for bad in (-1, UINT64_MAX + 1):
        with pytest.raises(ValueError, match="not an unsigned 64-bit number"):
            Stream.objects.filter(pk=top.pk).update(first_seq=bad)


@pytest.mark.usefixtures("celery_worker")
def test_streams_with_the_largest_sequences_are_created_listed_and_shown(
    client_alice: Client, profile: Profile,
) -> None:
    url = profile.server_list[0]
    job = create_stream(client_alice, profile, name="half", subjects="half",
                        first_seq=str(2**63))
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert live_config(url, "half")["first_seq"] == 2**63
    # Made by another client, at the very top of the range, with a message in it.
    create_raw(url, {"name": "top", "subjects": ["top"], "first_seq": UINT64_MAX - 1})
    publish(url, [("top", b"x")])
    listing = refresh_list(client_alice, profile)
    assert listing.status == JobStatus.SUCCEEDED, listing.error
    top = Stream.objects.get(profile=profile, name="top")
    assert (top.first_seq, top.last_seq, top.messages) == (UINT64_MAX - 1, UINT64_MAX - 1, 1)
    assert Stream.objects.get(profile=profile, name="half").first_seq == 2**63
    page = client_alice.get(reverse("stream_list", args=[profile.pk]),
                            {"sort": "-first_seq"}).content.decode()
    assert page.index(str(UINT64_MAX - 1)) < page.index(str(2**63))
    detail = client_alice.get(reverse("stream_detail", args=[profile.pk, "top"])).content.decode()
    assert str(UINT64_MAX - 1) in detail


@pytest.fixture
def refusing_stream_rows() -> Iterator[None]:
    """A database that refuses new stream rows, as a full disk or a broken constraint would."""
    if connection.vendor == "postgresql":
        statements = [
            "CREATE FUNCTION refuse_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'no room for this row'; END $$",
            "CREATE TRIGGER refuse_rows BEFORE INSERT ON streams_stream "
            "FOR EACH ROW EXECUTE FUNCTION refuse_rows()",
        ]
        undo = ["DROP TRIGGER refuse_rows ON streams_stream", "DROP FUNCTION refuse_rows()"]
    else:
        statements = ["CREATE TRIGGER refuse_rows BEFORE INSERT ON streams_stream "
                      "BEGIN SELECT RAISE(ABORT, 'no room for this row'); END"]
        undo = ["DROP TRIGGER refuse_rows"]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in undo:
            cursor.execute(statement)


@pytest.mark.usefixtures("celery_worker", "refusing_stream_rows")
def test_a_failure_while_recording_ends_the_job_saying_what_the_broker_did(
    client_alice: Client, profile: Profile,
) -> None:
    job = create_stream(client_alice, profile, name="unrecorded", subjects="unrecorded")
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("created on the broker; recording the outcome failed: ")
    assert "no room for this row" in job.error
    assert live_config(profile.server_list[0], "unrecorded")["subjects"] == ["unrecorded"]
    finished = AuditEvent.objects.get(job=job, action="job.finished")
    assert finished.outcome == "failed" and finished.message == job.error
    assert not Stream.objects.filter(name="unrecorded").exists()  # nothing half-written
