"""The Celery app. Tasks receive job ids only; results live in our own Job rows."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun, worker_process_shutdown
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memphisadmin.settings")

app = Celery("memphisadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _close_unusable_connections(**kwargs: Any) -> None:
    """What Django does at each request: drop connections that errored or outlived
    CONN_MAX_AGE, keep the rest (see CELERY_DB_REUSE_MAX)."""
    close_old_connections()


@worker_process_shutdown.connect
def _close_broker_connections(**kwargs: Any) -> None:
    """Leave the brokers with a proper goodbye rather than a dropped socket."""
    from streams import jetstream

    jetstream.close_kept_connections()
