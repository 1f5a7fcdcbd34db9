"""What every screen shares: the permission check (with its audit entry) and the choice
between a whole page and the htmx fragment."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from streams import audit
from streams.jobs import reaper
from streams.models import Job

View = Callable[..., HttpResponse]


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it: what htmx said about it in `htmx`."""

    htmx: HtmxDetails


def permission_required(perm: str) -> Callable[[View], View]:
    """403 for users without `perm`, and an audit entry saying who was refused what."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(perm):
                audit.record("permission.denied", audit.Context.from_request(request),
                             target_type="view", target_name=request.path[:255],
                             outcome="denied", message=f"missing permission {perm}")
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def page_or_partial(request: HtmxHttpRequest, template: str, partial: str) -> str:
    """The fragment for htmx requests, the whole page otherwise. A history restore (back to an
    address htmx pushed, missing from its cache) sends HX-Request too but replaces the whole
    body, and a boosted link expects a page."""
    htmx = request.htmx
    wants_fragment = bool(htmx) and not htmx.boosted and not htmx.history_restore_request
    return f"{template}#{partial}" if wants_fragment else template


def job_context(job: Job) -> dict[str, Any]:
    """What a job card shows: the job, and why it will be failed if it is overdue."""
    return {"job": job, "stalled": "" if job.is_finished else reaper.stalled(job)}


def job_card(request: HtmxHttpRequest, job: Job) -> HttpResponse:
    """The card of a job a POST submitted and waited for (wakeup.wait): its outcome, or still
    running and polling."""
    response = render(request, "streams/job_detail.html#job_card", job_context(job))
    if job.is_finished:  # regions showing what the job changes reload on this event
        response["HX-Trigger"] = "job-finished"
    return response
