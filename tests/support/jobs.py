"""Jobs the tests submit: the one a response shows, and waiting for the worker to finish it."""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone

from streams.models import Job, JobKind, JobStatus, Profile
from tests.support.waiting import wait_until


def wait_for_job(job_id: int, timeout: float = 20.0) -> Job:
    """Poll the database until the worker has finished the job."""

    def finished() -> Job | None:
        job = Job.objects.get(pk=job_id)
        return job if job.is_finished else None

    return wait_until(finished, timeout,
                      lambda: f"job {job_id} still {Job.objects.get(pk=job_id).status}")


def job_from(response: Any) -> Job:
    """The job whose card the response shows."""
    return Job.objects.get(pk=job_id_in(response.content.decode()))


def job_id_in(html: str) -> int:
    """The id of the job whose card the page shows."""
    match = re.search(r'id="job-(\d+)"', html)
    assert match, html[:2000]
    return int(match.group(1))


def read_just_now(profile: Profile, kind: str = JobKind.STREAM_LIST, target: str = "") -> Job:
    """A read of `profile`'s streams (or of the stream `target`) that has just ended, as if it
    had stored the rows a test made itself: with READ_AGAIN_AFTER longer than the test, their
    pages do not read them again."""
    return Job.objects.create(kind=kind, profile=profile, profile_name=profile.name,
                              target=target or profile.name, status=JobStatus.SUCCEEDED,
                              finished_at=timezone.now())
