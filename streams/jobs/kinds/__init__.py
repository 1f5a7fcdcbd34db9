"""The kinds of job, one class each, by what they act on; KINDS registers them all. Adding an
operation is adding a class in its module here and to KINDS (and its form and view). ApplyPlan,
which may run for thousands of streams, records as it goes instead (see there)."""

from __future__ import annotations

from streams.jobs.kinds.advisories import KeepAdvisories
from streams.jobs.kinds.base import Kind, Result
from streams.jobs.kinds.connection import CheckConnection, TestConnection
from streams.jobs.kinds.consumers import (
    CreateConsumer,
    DeleteConsumer,
    PauseConsumer,
    ResumeConsumer,
    UpdateConsumer,
)
from streams.jobs.kinds.messages import (
    BrowseMessages,
    DeleteMessage,
    DownloadMessage,
    PublishMessage,
    ReadMessage,
)
from streams.jobs.kinds.plans import ApplyPlan, PlanChanges
from streams.jobs.kinds.streams import (
    AdoptStreams,
    CreateStream,
    DeleteStream,
    ListStreams,
    PurgeStream,
    ReadStream,
    UpdateStream,
)

KINDS: dict[str, Kind] = {kind.kind: kind() for kind in (
    TestConnection, ListStreams, ReadStream, CreateStream, UpdateStream, DeleteStream,
    PurgeStream, AdoptStreams, BrowseMessages, ReadMessage, DownloadMessage, DeleteMessage,
    PublishMessage, KeepAdvisories, CreateConsumer, UpdateConsumer, DeleteConsumer, PauseConsumer,
    ResumeConsumer, PlanChanges, ApplyPlan, CheckConnection)}

__all__ = ["KINDS", "Kind", "Result"]
