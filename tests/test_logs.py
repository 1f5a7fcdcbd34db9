"""LOG_FORMAT=json: a line per request and per job, each a JSON object with the request's or
the job's fields, and never a secret (the lines are grepped for the ones a test sent)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from streams.errors import OperationError
from streams.logs import JsonFormatter
from streams.models import Job, JobKind, JobStatus, Profile
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from tests.support.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-in-the-form-8812"


@pytest.fixture
def json_lines(settings: Any) -> Iterator[io.StringIO]:
    settings.LOG_FORMAT = "json"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_a_request_and_a_job_are_one_json_line_each_without_secrets(
    json_lines: io.StringIO,
) -> None:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("ops", "", "pass-word-1"))
    response = client.post(reverse("profile_create"), {
        "name": "logged", "servers": "nats://127.0.0.1:4222", "broker_kind": "nats",
        "connect_timeout": "2", "auth_method": "user_password", "username": "app",
        "password": SECRET}, HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 302
    profile = Profile.objects.get(name="logged")
    job = Job.objects.create(kind=JobKind.TEST_CONNECTION, profile=profile,
                             profile_name=profile.name, target=profile.name)
    job.fail(OperationError("no server is available"), expected=JobStatus.QUEUED)

    text = json_lines.getvalue()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one object
    [request] = [line for line in lines if line["logger"] == "memphisadmin.request"]
    assert (request["method"], request["path"], request["status"], request["user"]) == (
        "POST", "/profiles/new/", 302, "ops")
    assert request["duration_ms"] >= 0 and request["level"] == "INFO"
    [ended] = [line for line in lines if line.get("job") == job.pk]
    assert (ended["kind"], ended["profile"], ended["outcome"]) == (
        "test_connection", "logged", "failed")


def test_the_worker_logs_json_lines_only(tmp_path: Path) -> None:
    redis = RedisServer.start(tmp_path / "redis")
    try:
        worker = Worker(redis.url, tmp_path, LOG_FORMAT="json")
        try:
            wait_until(lambda: "ready." in worker.log_text(), 30, worker.log_text)
            lines = [line for line in worker.log_text().splitlines() if line.strip()]
            assert lines and all(json.loads(line)["level"] for line in lines), lines[:5]
        finally:
            worker.stop()
    finally:
        redis.stop()  # also when the worker did not start
