"""The Celery app. Tasks receive job ids only; results live in our own Job rows."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memphisadmin.settings")

app = Celery("memphisadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
