"""What the advisory listener (streams.outside) remembers of the changes made outside."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from streams.models.profiles import Profile
from streams.uint64 import UInt64Field


class SeenAdvisory(models.Model):
    """A JetStream advisory already turned into an audit entry, written in the entry's
    transaction: the unique id makes recording idempotent, so a redelivered advisory or two
    listeners never write an entry twice. Kept a little longer than the capture stream keeps
    advisories (streams.outside forgets older ones)."""

    advisory_id = models.CharField(max_length=64, unique=True)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.advisory_id


class CaptureMark(models.Model):
    """How far the advisory listener has recorded a profile's capture stream: the stream (its
    creation time tells it from one made again under the same name) and the highest sequence
    recorded, written before the advisories are acknowledged. A purge moves the consumer's
    ack floor with the stream; this does not move, so what the purge removed unread is seen.
    A row of its own: the profile form saves every field of the Profile."""

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE, primary_key=True,
                                   related_name="+")
    stream_created = models.DateTimeField()
    seq = UInt64Field()

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.stream_created:%Y-%m-%d %H:%M:%S} #{self.seq}"


class Following(models.Model):
    """Since when the advisory listener follows a profile's advisories (no row: it does not),
    which the profile's page says. A row of its own: profile saves never overwrite it."""

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE, related_name="following")
    since = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.profile_id} since {self.since:%Y-%m-%d %H:%M:%S}"
