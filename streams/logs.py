"""Structured logs (LOG_FORMAT=json): one JSON object a line, with what a request or a job was
(request id, method, path, status, user, duration; job id, kind, profile, outcome, duration) as
fields of their own. Messages and fields are the same as the plain lines', which never hold a
secret: the broker layer words its errors without credentials, and no request's body, query
string or headers are logged."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# The fields a record may carry (logging's `extra`), copied into its JSON line.
FIELDS = ("request_id", "method", "path", "status", "user", "duration_ms", "job", "kind",
          "profile", "outcome")

request_log = logging.getLogger("memphisadmin.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        line.update({field: getattr(record, field) for field in FIELDS
                     if hasattr(record, field)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class RequestLogMiddleware:
    """One line per request with LOG_FORMAT=json (gunicorn's access log, plain text, is off
    then: `./dev web`). The path without its query string, which may hold anything typed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if settings.LOG_FORMAT == "json":
            user = getattr(request, "user", None)
            request_log.info("%s %s %s", request.method, request.path, response.status_code,
                             extra={"request_id": getattr(request, "request_id", ""),
                                    "method": request.method, "path": request.path,
                                    "status": response.status_code,
                                    "user": user.get_username() if user and
                                    user.is_authenticated else "",
                                    "duration_ms": round(
                                        (time.perf_counter() - started) * 1000, 1)})
        return response
