"""Test connection (someone pressed it) and the scheduler's periodic check: who the server is
and what JetStream offers the account; the check also samples streams and consumers."""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.utils import timezone

from streams.broker import checks, server
from streams.broker.connection import Connection
from streams.errors import OperationError
from streams.jobs.kinds.base import Kind, Result
from streams.jobs.kinds.streams import ListStreams
from streams.models import (
    AuditEvent,
    ConnectionHealth,
    Consumer,
    ConsumerSample,
    Job,
    JobKind,
    Profile,
    StreamSample,
)


class TestConnection(Kind):
    kind = JobKind.TEST_CONNECTION
    done = "the server answered"
    retry = False  # the answer is the point of a test: report the first failure

    def call(self, job: Job, conn: Connection) -> Result:
        # nats-py tries each server twice within the connect timeout; then the account request.
        return server.check_connection(
            conn, timeout=2 * conn.connect_timeout * max(len(conn.servers), 1) + 5)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        ConnectionHealth.objects.note(job.profile_id, result, error.message if error else "")
        Profile.objects.note_version(job.profile, (result or {}).get("version"))
        return []


class CheckConnection(ListStreams):
    """What the home page shows of a connection; when sampling, a listing as well (stored as
    ListStreams stores it) and the numbers the charts draw."""

    kind = JobKind.CONNECTION_CHECK
    done = "checked the connection"
    retry = False  # the next round checks again

    def call(self, job: Job, conn: Connection) -> Result:
        return checks.check(conn, sample=bool(job.params.get("sample")),
                            consumer_streams=settings.SAMPLE_CONSUMER_STREAMS)

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is None:
            ConnectionHealth.objects.note(job.profile_id, None, error.message if error else "")
            return []
        listing = result["listing"]
        report = result["report"] if listing is None else {**result["report"],
                                                           "leaders": _leaders(listing)}
        ConnectionHealth.objects.note(job.profile_id, report, sampled=listing is not None)
        Profile.objects.note_version(job.profile, result["report"]["version"])
        if listing is None:
            return []
        entries = super().record(job, listing, None)
        now = timezone.now()
        StreamSample.objects.bulk_create(
            [StreamSample(profile_id=job.profile_id, stream=info["config"]["name"], at=now,
                          messages=info["state"]["messages"], bytes=info["state"]["bytes"])
             for info in listing["streams"] if info.get("state")], batch_size=1000)
        samples = []
        for stream, listed in result["consumers"].items():
            Consumer.objects.store(job.profile_id, stream, listed["consumers"],
                                   listed["missing"])
            samples += [ConsumerSample(profile_id=job.profile_id, stream=stream,
                                       consumer=info["name"], at=now,
                                       pending=info.get("num_pending", 0),
                                       ack_pending=info.get("num_ack_pending", 0))
                        for info in listed["consumers"]]
        ConsumerSample.objects.bulk_create(samples, batch_size=1000)
        return entries

    def summary(self, result: Result) -> Result:
        listing = result["listing"]
        return {"report": result["report"],
                "streams": None if listing is None else len(listing["streams"]),
                "consumers": sum(len(listed["consumers"])
                                 for listed in result["consumers"].values())}


def _leaders(listing: Result) -> dict[str, int]:
    """How many streams each server leads, as the listing says: a cluster's balance at a
    glance (the meta leader is not told to an account)."""
    return dict(Counter(leader for info in listing["streams"]
                        if (leader := (info.get("cluster") or {}).get("leader"))))
