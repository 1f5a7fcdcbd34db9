"""What every screen shares: the permission check (with its audit entry) and the choice
between a whole page and the htmx fragment."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from streams import audit
from streams.jobs import wakeup
from streams.models import Job

View = Callable[..., HttpResponse]


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


def page_or_partial(request: HttpRequest, template: str, partial: str) -> str:
    """The fragment for htmx requests, the whole page otherwise."""
    return f"{template}#{partial}" if request.htmx and not request.htmx.boosted else template




def job_card(request: HttpRequest, job: Job, fallback: str) -> HttpResponse:
    """The answer to a POST that submitted a job: for htmx, the job card as soon as the job
    ended (or, when it takes longer, still running and polling); otherwise a redirect."""
    if not request.htmx:
        return redirect(fallback)
    job = wakeup.wait(job)
    response = render(request, "streams/job_detail.html#job_card", {"job": job})
    if job.is_finished:  # regions showing what the job changes reload on this event
        response["HX-Trigger"] = "job-finished"
    return response
