"""The moment a job ends, told by the worker to a web request waiting for it: a per-job list in
the Redis that carries the queue. A list rather than pub/sub, so an end that comes before the
wait starts is not missed; it expires on its own when nobody waited. When Redis does not answer,
nothing is lost: the page polls the job card instead. Below the models (Job.wait, Job.finish
call it): it knows job ids, never rows."""

from __future__ import annotations

import logging
import threading

import redis
from celery import current_app
from django.conf import settings

log = logging.getLogger(__name__)

_local = threading.local()  # a client per thread: gthread web workers wait side by side


def _client() -> redis.Redis:
    url = current_app.conf.broker_url  # the project's app, without importing the project
    if getattr(_local, "url", None) != url:
        _local.client = redis.Redis.from_url(url, socket_connect_timeout=1,
                                             socket_timeout=settings.JOB_WAIT + 2)
        _local.url = url
    return _local.client


def _key(job_id: int) -> str:
    return f"memphisadmin:job-ended:{job_id}"


def notify(job_id: int) -> None:
    """Called once the job's end is committed."""
    try:
        with _client().pipeline() as pipe:
            pipe.rpush(_key(job_id), 1).expire(_key(job_id), 60).execute()
    except redis.RedisError as exc:
        log.warning("could not announce the end of job %s: %s", job_id, exc)


def wait_for(job_id: int, timeout: float) -> None:
    """Until the job's end is announced, or for `timeout` seconds (more than 0: BLPOP's 0 waits
    forever); Job.wait reads the row afterwards."""
    try:
        _client().blpop([_key(job_id)], timeout=timeout)
    except redis.RedisError as exc:
        log.warning("could not wait for job %s: %s", job_id, exc)
