"""Changes made outside the dashboard, as the advisory listener (manage.py watch_advisories,
over streams.broker.advisories) reports them: the profiles it follows, and each stream another
client created, updated or deleted as one audit entry `stream.changed_outside`, with its
author, its request and how the stream now differs from its definition here. The Stream row
follows, so the list shows it. Like the web process, this never talks to a broker itself."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from streams import audit, definitions, metrics, stream_config, system_streams
from streams.broker.advisories import API_AUDIT_SUBJECT, Gap, Mark, StreamChange, Watch
from streams.broker.connection import Connection
from streams.models import (
    AuditEvent,
    CaptureMark,
    Following,
    Job,
    JobKind,
    JobStatus,
    Plan,
    Profile,
    SeenAdvisory,
    Stream,
    StreamDefinition,
    StreamSync,
    WorkerHeartbeat,
)

log = logging.getLogger(__name__)

ACTION = "stream.changed_outside"
LOST_ACTION = "advisories.lost"
REJECTED_ACTION = "advisories.rejected"
UNKNOWN_AUTHOR = "nats:unknown"
# What nats-server gives as the user of a client that logged in with a token.
HIDDEN_USER = "[REDACTED]"
# Longer than the capture stream keeps an advisory, so none is delivered after its id is gone.
SEEN_FOR = timedelta(days=8)
# How far apart the broker's clock and ours may be when a job is matched to an advisory by time.
CLOCK_SKEW = timedelta(seconds=2)


def targets() -> list[Watch]:
    """The profiles recording changes made outside. Asked again every few seconds, which is
    also when advisory ids too old to come back are forgotten."""
    close_old_connections()
    SeenAdvisory.objects.filter(seen_at__lt=timezone.now() - SEEN_FOR).delete()
    # A capture stream no longer kept is removed by its job: a later one starts afresh.
    CaptureMark.objects.exclude(profile__record_outside=True,
                                profile__keep_advisories=True).delete()
    watches = [Watch(profile.pk, profile.name, Connection.from_profile(profile),
                     profile.keeps_advisories)
               for profile in Profile.objects.filter(record_outside=True)]
    WorkerHeartbeat.objects.note_alive(WorkerHeartbeat.LISTENER)  # it read them (/healthz)
    return watches


def record(profile_id: int, change: StreamChange, current: dict[str, Any] | None,
           read_at: datetime) -> bool:
    """One audit entry for the change, and its Stream row, unless it is not to be recorded
    (a Memphis system stream, the dashboard's own job, recording turned off) or it was
    recorded already: its advisory id is stored in the entry's transaction. `current`: the
    stream as the server answered when asked at `read_at`, after the advisory came (None: not
    there): the row is the server's, never the advisory's, which anyone who may publish on
    `$JS.EVENT.>` could have written. The entry says what the advisory says."""
    close_old_connections()
    profile = Profile.objects.filter(pk=profile_id, record_outside=True).first()
    if (profile is None or system_streams.system_kind(change.stream) == "memphis"
            or (not change.identified and _made_by_a_job(profile, change))):
        return False
    with transaction.atomic():
        if not _first_time(change.id, profile):
            log.info("profile %r: advisory %s recorded already", profile.name, change.id)
            return False
        stored = (StreamDefinition.objects.filter(profile=profile, name=change.stream)
                  .values_list("config", flat=True).first())
        live = change.config
        drift = (definitions.drift(stored, live)
                 if stored is not None and live is not None else None)
        actor = _actor(change.author, change.identified)
        AuditEvent.objects.record(
            ACTION, _context(change.author), target_type="stream", target_name=change.stream,
            profile=profile, outcome="succeeded", actor_name=actor,
            before=stored, after=_after(change, live),
            changes=drift or None,
            message=_message(change, actor, stored, current, drift),
        )
        _store_row(profile, change, actor, current, read_at, stored)
    metrics.ADVISORIES.labels("recorded").inc()
    log.info("profile %r: %s %s %s by %s (advisory %s)", profile.name, ACTION, change.stream,
             change.action, actor, change.id)
    return True


def following(profile_id: int, since: datetime | None) -> None:
    """The listener follows the profile's advisories since then (None: no longer), which its
    page says."""
    close_old_connections()
    if since is None:
        Following.objects.filter(profile_id=profile_id).delete()
    elif Profile.objects.filter(pk=profile_id).exists():
        Following.objects.update_or_create(profile_id=profile_id, defaults={"since": since})


def record_rejected(profile_id: int, count: int, reason: str) -> None:
    """`count` advisories on the API audit subject were not recorded (malformed, or failing
    every delivery), the latest for `reason`: the listener writes this at most once an hour
    per profile, so a flood of forgeries is one line here, not one per forgery."""
    close_old_connections()
    profile = Profile.objects.filter(pk=profile_id, record_outside=True).first()
    if profile is None:
        return
    AuditEvent.objects.record(
        REJECTED_ACTION, audit.Context(), target_type="profile", target_name=profile.name,
        profile=profile, outcome="failed", actor_name=audit.command_actor(),
        after={"count": count, "reason": reason},
        message=f"{count} advisories on {API_AUDIT_SUBJECT} not recorded since the previous "
                f"such entry, the latest: {reason}. Servers send no malformed advisories: "
                "check who may publish on $JS.EVENT.> in the account.")
    metrics.ADVISORIES.labels("rejected").inc(count)
    log.warning("profile %r: %s advisories rejected, the latest: %s", profile.name, count,
                reason)


def record_lost(profile_id: int, gap: Gap) -> bool:
    """Advisories of the capture stream were removed (its limits, a purge) or the stream was
    deleted before any listener read them: one entry says so, however many listeners find
    the gap, and a job reads every stream, so each that now differs from its definition is
    recorded, author unknown (noticed)."""
    close_old_connections()
    profile = Profile.objects.filter(pk=profile_id, record_outside=True).first()
    if profile is None:
        return False
    # The gap's own id, in the advisory ids' table (whose ids are 64 characters at most).
    gap_id = hashlib.sha256(f"{profile.pk}:{gap.stream_created.isoformat()}:{gap.first}:"
                            f"{gap.last}".encode()).hexdigest()[:48]
    with transaction.atomic():
        if gap.last is None:
            CaptureMark.objects.filter(profile=profile).delete()  # reported once
            if not profile.keep_advisories:  # consent withdrawn: its job removed the stream
                return False
        if not _first_time(f"lost:{gap_id}", profile):
            return False
        reading = Job.objects.submit(JobKind.STREAM_LIST, profile, audit.Context(),
                                     target=profile.name)
        if gap.last is None:
            what = (f"The capture stream was deleted after the listener recorded it up to "
                    f"sequence {gap.first - 1}: advisories after that")
        else:
            what = (f"{gap.last - gap.first + 1} advisories (capture stream sequences "
                    f"{gap.first} to {gap.last}) were removed from it, by its size or age "
                    "limit or a purge, before the listener read them:")
        AuditEvent.objects.record(
            LOST_ACTION, audit.Context(), target_type="profile", target_name=profile.name,
            profile=profile, job=reading, outcome="failed", actor_name=audit.command_actor(),
            after={"stream": system_streams.CAPTURE_STREAM, "first_seq": gap.first,
                   "last_seq": gap.last,
                   "count": None if gap.last is None else gap.last - gap.first + 1},
            message=f"{what} changes made outside meanwhile are not in this log. Job "
                    f"#{reading.pk} reads every stream: each that now differs from its "
                    "definition is recorded, author unknown.")
    metrics.ADVISORIES.labels("lost").inc(1 if gap.last is None else gap.last - gap.first + 1)
    log.warning("profile %r: advisories lost (%s to %s); job %s reads every stream",
                profile.name, gap.first, gap.last or "the stream's deletion", reading.pk)
    return True


def read_mark(profile_id: int) -> Mark | None:
    close_old_connections()
    row = CaptureMark.objects.filter(profile_id=profile_id).first()
    return None if row is None else Mark(row.stream_created, row.seq)


def mark(profile_id: int, read: Mark) -> None:
    """How far the capture stream was recorded, never back (two listeners share it), unless
    it is a stream made since."""
    close_old_connections()
    with transaction.atomic():
        current = CaptureMark.objects.select_for_update().filter(profile_id=profile_id).first()
        if current is None or current.stream_created != read.stream_created or \
                current.seq < read.seq:
            CaptureMark.objects.update_or_create(profile_id=profile_id, defaults={
                "stream_created": read.stream_created, "seq": read.seq})


def _first_time(advisory_id: str, profile: Profile) -> bool:
    """Whether this id is new, storing it: called in the transaction that writes its entry, so
    a second listener or a redelivery finds it taken and writes nothing."""
    try:
        with transaction.atomic():
            SeenAdvisory.objects.create(advisory_id=advisory_id, profile=profile)
    except IntegrityError:
        return False
    return True


def _made_by_a_job(profile: Profile, change: StreamChange) -> bool:
    """Servers before 2.11 name no client in their advisories: a change is the dashboard's own
    when one of its jobs making that kind of change to that stream (its target, or a step of
    an apply's plan) ran at that moment."""
    jobs = (Job.objects.filter(profile=profile, started_at__lte=change.at + CLOCK_SKEW,
                               kind__in=[kind for kind in JobKind
                                         if change.action in kind.stream_changes])
            .exclude(status=JobStatus.QUEUED)
            .filter(Q(finished_at=None) | Q(finished_at__gte=change.at - CLOCK_SKEW)))
    if jobs.exclude(kind=JobKind.STREAM_APPLY).filter(target=change.stream).exists():
        return True
    plans = Plan.objects.filter(apply_job__in=jobs.filter(kind=JobKind.STREAM_APPLY))
    return any(step["name"] == change.stream for steps in plans.values_list("steps", flat=True)
               for step in steps or [])


def _after(change: StreamChange, live: dict[str, Any] | None) -> dict[str, Any]:
    """The config after the change, as every stream entry holds it (the config before it is
    the definition, so "Restore this version" plans back to it), and beside it under
    `advisory` (no stream setting has that name) who asked for it and how."""
    asked = {"id": change.id, "at": change.at.isoformat(), "subject": change.subject,
             "author": change.author, "request": change.request}
    if change.request_truncated:
        asked["request_truncated"] = True
    return {**(live or {}), "advisory": asked}


def _actor(author: dict[str, Any], identified: bool) -> str:
    if author.get("user") == HIDDEN_USER:  # a token login: name the client instead
        client = author.get("client_name") or f"an unnamed client at {author.get('host', '?')}"
        return f"nats:{client} (user hidden by the server: a token login)"
    if author.get("user"):
        return f"nats:{author['user']}"
    who = "anonymous" if identified else "unknown user"
    return f"nats:{who} in account {author.get('account', '?')}"


def _context(author: dict[str, Any]) -> audit.Context:
    """Where the change came from: the client's address and what it says it is."""
    try:
        ip = str(ipaddress.ip_address(author.get("host", "")))
    except ValueError:
        ip = None
    client = " ".join(f"{author[key]}" for key in ("client_name", "lang", "version")
                      if key in author)
    return audit.Context(ip=ip, user_agent=client)


def _message(change: StreamChange, actor: str, stored: dict[str, Any] | None,
             current: dict[str, Any] | None, drift: dict[str, Any] | None) -> str:
    author = change.author
    text = f"{change.action} outside the dashboard by {actor.removeprefix('nats:')}"
    if "host" in author:
        text += f" from {author['host']}"
    if "client_name" in author:
        text += f" with {author['client_name']!r}"
    if not change.identified:
        text += " (nats-server names the user from 2.11 on)"
    # Read after the advisory came: a later change, or a forged advisory.
    if change.action == "deleted" and current is not None:
        text += "; the server still has it"
    elif change.action != "deleted" and current is None:
        text += "; the server no longer has it"
    if stored is None:
        return f"{text}; no definition here"
    if change.action == "deleted":
        return f"{text}; its definition here remains"
    if not drift:
        return f"{text}; it matches its definition here"
    labels = ", ".join(stream_config.label_of_key(key) for key in drift)
    return f"{text}; differs from its definition here in {labels}"


def _store_row(profile: Profile, change: StreamChange, actor: str,
               current: dict[str, Any] | None, read_at: datetime,
               definition: dict[str, Any] | None) -> None:
    """The Stream row as the server answered, unless a later read is there already."""
    if Stream.objects.filter(profile=profile, name=change.stream,
                             read_at__gte=read_at).exists():
        return
    if current is not None:
        Stream.objects.store([Stream.objects.row(profile.pk, current, read_at,
                                                 definition=definition)])
    elif change.action == "deleted":
        Stream.objects.mark_gone(profile.pk, change.stream, f"deleted outside the dashboard by "
                                 f"{actor} at {change.at:%Y-%m-%d %H:%M:%S} UTC")
    else:
        Stream.objects.mark_gone(profile.pk, change.stream,
                                 f"not on the server after {change.action} outside the dashboard")


def noticed(job: Job, previous: dict[str, tuple[str, Any]],
            found: Iterable[dict[str, Any]]) -> list[AuditEvent]:
    """What a read found changed outside that no advisory recorded (no listener ran, or the
    profile does not record): one entry, author unknown, for each stream newly drifted (or
    drifted differently) or missing. `previous`: each stream's (sync, drift) before the read;
    `found`: the Stream rows it stores. A change the listener recorded left its row as the read
    finds it, so it is not written twice."""
    entries = []
    for row in found:
        sync, drift = row["sync"], row["drift"]
        if previous.get(row["name"]) == (sync, drift):
            continue
        if sync == StreamSync.MISSING:
            message = "deleted outside the dashboard; its definition here remains"
        elif sync == StreamSync.DRIFTED and drift:
            labels = ", ".join(stream_config.label_of_key(key) for key in drift)
            message = f"changed outside the dashboard: differs from its definition in {labels}"
        elif sync == StreamSync.IN_SYNC and row["name"] in previous and \
                previous[row["name"]][0] in {StreamSync.DRIFTED, StreamSync.MISSING}:
            message = "changed outside the dashboard back to its definition"
        else:
            continue
        entries.append(AuditEvent.objects.entry(
            ACTION, audit.Context(), target_type="stream", target_name=row["name"],
            profile=job.profile, job=job, outcome="succeeded", actor_name=UNKNOWN_AUTHOR,
            changes=drift, message=f"{message} (found by a read; no advisory named who)"))
    return entries

