from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from streams.views.http import Gone


class RequestIdMiddleware:
    """Tags each request with an id that audit entries and the response header carry."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ContentSecurityPolicyMiddleware:
    """Pages load scripts, styles and everything else from this site only, and nothing frames
    them: an injected <script> or style that escaped escaping would not run."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class VaryOnHtmxMiddleware:
    """Marks every response as depending on the htmx request headers: screens answer htmx with
    a fragment and a history restore or a plain load with the page (views.http.page_or_partial,
    and the views that ask request.htmx themselves), so a cache in between must not hand one
    the other's response. One middleware cannot forget a view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request", "HX-History-Restore-Request"))
        return response


class NotKeptMiddleware:
    """A page shows what is there now: no browser keeps one to show again on Back (its cache
    would show a consumer since deleted), and none stays on disk with the broker's data."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response


class GoneMiddleware:
    """A page whose object is gone (views.http.Gone) says so, with a link back, status 404."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, Gone):
            return None
        return render(request, "streams/gone.html", exception.context, status=404)


class IdleSessionMiddleware:
    """Logs out a session left idle for SESSION_IDLE_MINUTES; the login page then asks again
    (LoginRequiredMiddleware, which runs after). The last activity is written at most once a
    minute, not on every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            seen = request.session.get("active_at", now)
            if now - seen > settings.SESSION_IDLE_MINUTES * 60:
                logout(request)
            elif now - seen >= 60 or "active_at" not in request.session:
                request.session["active_at"] = now
        return self.get_response(request)
