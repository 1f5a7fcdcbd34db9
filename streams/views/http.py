"""What every screen shares: the permission check (with its audit entry), the choice between a
whole page and the htmx fragment, and how a create or edit form validates field by field and
shows the job it started."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlsplit

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import push_url
from django_htmx.middleware import HtmxDetails

from streams import audit, policy, refusals
from streams.models import Consumer, Job, JobStatus, Plan, Profile, Stream

View = Callable[..., HttpResponse]
# The one event saying "a job ended", raised by the response that shows the end; every section
# showing what a job changes reloads on it (`hx-trigger="job-finished from:body"`).
JOB_FINISHED = "job-finished"


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it: what htmx said about it in `htmx`."""

    htmx: HtmxDetails


class Gone(Http404):
    """What a page is about is not among the rows (deleted, or not read yet): instead of a bare
    404 the page says so and links back (streams.middleware.GoneMiddleware shows it)."""

    def __init__(self, what: str, name: str, back: str, back_label: str) -> None:
        super().__init__(f"no {what} {name}")
        self.context = {"what": what, "name": name, "back": back, "back_label": back_label}


def stream_or_gone(profile: Profile, name: str) -> Stream:
    stream = Stream.objects.filter(profile=profile, name=name).first()
    if stream is None:
        raise Gone("stream", name, reverse("stream_list", args=[profile.pk]),
                   f"the streams of {profile.name}")
    return stream


def consumer_or_gone(profile: Profile, stream: str, name: str) -> Consumer:
    consumer = Consumer.objects.filter(profile=profile, stream_name=stream, name=name).first()
    if consumer is None:
        raise Gone("consumer", f"{name} of {stream}",
                   reverse("stream_detail", args=[profile.pk, stream]), stream)
    return consumer


def may(action: str, of: type[Plan] | type[Job] | None = None) -> Callable[[View], View]:
    """A view acting on connection `pk` (streams.policy's `action`), called with the profile
    in its place; or, with `of`, on that model's row `pk` (a plan, a job), called with the row,
    whose profile is the one checked. `visible_profile` and `check` say what a user who may
    not gets."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> HttpResponse:
            row = None if of is None else of.objects.select_related("profile").filter(
                pk=pk).first()
            if of is not None and row is None:
                missing(request, of._meta.verbose_name)
            profile = visible_profile(request, pk if row is None else row.profile_id)
            check(request, action, profile)
            return view(request, profile if row is None else row, *args, **kwargs)

        wrapper.action = action  # type: ignore[attr-defined]  # the permission tests read it
        return wrapper

    return decorator


def visible_profile(request: HttpRequest, pk: int | None) -> Profile:
    """The profile, or the 404 of a missing one for a user who may not see it: another team's
    connections do not show they exist."""
    profile = Profile.objects.select_related("team").filter(pk=pk).first()
    if profile is None or not policy.sees(request.user, profile):
        missing(request, "connection")
    return profile


def missing(request: HttpRequest, what: str) -> NoReturn:
    """The 404 of something missing, or hidden from this user (another team's): a write to
    it is a refusal on the record, as a 403 is (streams.refusals)."""
    if request.method not in ("GET", "HEAD"):
        refusals.record(audit.Context.from_request(request), request.path, "",
                        f"no such {what} among the user's teams'")
    raise Http404(f"no such {what}")


def check(request: HttpRequest, action: str, profile: Profile) -> None:
    """403 with the reason for a user who may see the profile but not do `action` on it, and
    an audit entry saying who was refused what (bounded: refusals.record)."""
    if reason := policy.refusal(request.user, action, profile):
        refuse(request, action, reason, profile)


def refuse(request: HttpRequest, action: str, reason: str, profile: Profile | None = None,
           ) -> NoReturn:
    """The 403 of a refused request, saying why, recorded in the audit log (bounded:
    streams.refusals)."""
    refusals.record(audit.Context.from_request(request), request.path, action, reason, profile)
    raise PermissionDenied(reason[:1].upper() + reason[1:] + ".")


def page_or_partial(request: HtmxHttpRequest, template: str, partial: str) -> str:
    """The fragment for htmx requests, the whole page otherwise. A history restore (back to an
    address htmx pushed, missing from its cache) sends HX-Request too but replaces the whole
    body, and a boosted link expects a page."""
    htmx = request.htmx
    wants_fragment = bool(htmx) and not htmx.boosted and not htmx.history_restore_request
    return f"{template}#{partial}" if wants_fragment else template


def follow_address(request: HtmxHttpRequest, response: HttpResponse, path: str,
                   query: str) -> HttpResponse:
    """Push `path?query` (what an htmx request to a page's region asked, without empty fields)
    when it is another view of the page the browser shows, so that reload, bookmarks and Back
    show it. A URL belongs to the page: a section loaded into another page (the audit entries
    on a profile's) never moves the address, nor does a request asking what the address says
    already (a region's own first read, its reload after a job), which would leave Back
    landing on the same view. Either way it overrules the region's links' hx-push-url."""
    here = urlsplit(request.htmx.current_url_abs_path or "")
    moved = here.path == path and sorted(parse_qsl(here.query)) != sorted(parse_qsl(query))
    return push_url(response, (f"{path}?{query}" if query else path) if moved else False)


def refused(request: HtmxHttpRequest, reason: str, status: int = 400) -> HttpResponse:
    """A request refused, saying why: with htmx the reason alone, which the page's htmx config
    swaps into the region that asked (base.html, responseHandling); without, a whole page
    with the way back."""
    back = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse("home")
    return render(request, page_or_partial(request, "streams/refused.html", "reason"),
                  {"reason": reason, "back": back}, status=status)


def permission_denied(request: HtmxHttpRequest, exception: Exception) -> HttpResponse:
    """The project's 403 (handler403): a refusal like any other, with the reason raised."""
    return refused(request, str(exception) or "You may not do this.", status=403)


def job_context(job: Job) -> dict[str, Any]:
    """What a job card shows: the job, and why it will be failed if it is overdue."""
    return {"job": job, "stalled": job.stalled() if job.waits_for_worker else ""}


def job_card(request: HtmxHttpRequest, job: Job) -> HttpResponse:
    """The card of a job a POST submitted and waited for (Job.wait): its outcome, or still
    running and polling."""
    response = render(request, "streams/job_detail.html#job_card", job_context(job))
    if job.is_finished:
        response["HX-Trigger"] = JOB_FINISHED
    return response


def reading(request: HttpRequest, job: Job | None) -> HttpResponse:
    """The answer to a page's read (Job.objects.read_again): a poll of the read, whose end
    reloads the sections showing its rows; or, when they were read meanwhile, that at once."""
    response = render(request, "streams/_reading.html", {"job": job})
    if job is None:
        response["HX-Trigger"] = JOB_FINISHED
    return response


def form_response(request: HtmxHttpRequest, template: str, form: forms.Form,
                  context: dict[str, Any], *, typed: str = "name") -> HttpResponse:
    """The field row alone while the user types (each row validates itself, as the template
    _field_row.html says: `typed` as it is typed, the others once left), else the form region
    or the page."""
    context = {**context, "typed": typed}
    field = request.GET.get("validate", "")
    if request.method == "POST" and field in form.fields:
        return render(request, f"{template}#field_row", {**context, "field": form[field]})
    return render(request, page_or_partial(request, template, "form_region"), context)


def addressed_job(profile: Profile, kind: str, request: HttpRequest, **of: Any) -> Job:
    """The job named by `?job=`: a create or edit form's region, or a browse's, polls with it
    while it runs, a download is offered from its page. `of`: what the job must be about (its
    stream, its consumer, its actor), so that an address naming another object's job is not
    taken for this one's."""
    job_id = request.GET.get("job", "")
    if not job_id.isascii() or not job_id.isdigit():
        raise Http404("no such job")
    return get_object_or_404(Job, pk=int(job_id), profile=profile, kind=kind, **of)


F = TypeVar("F", bound=forms.Form)


def with_broker_error(job: Job, form: F) -> F:
    """The form of a job's answers, with the broker's error beside its field if it failed."""
    form.is_valid()
    if job.status == JobStatus.FAILED:
        form.add_error(job.error_field if job.error_field in form.fields else None, job.error)
    return form


def sent(request: HttpRequest, form: Any) -> bool:
    """Whether a create or edit form (stream, consumer) was sent to act on, valid: a POST, not
    one row's validation (`?validate=`). Its values are normalised for the page either way."""
    if request.method != "POST":
        return False
    valid = form.is_valid()
    form.normalise()
    return valid and "validate" not in request.GET


def digest(changes: dict[str, Any]) -> str:
    """What an edit's Apply sends back: the digest of exactly the changes it was shown."""
    return hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:16]


def confirmed(request: HttpRequest, form: Any, context: dict[str, Any], what: str,
              diff_rows: Callable[[dict[str, Any]], Any]) -> bool:
    """An edit's two steps: first the diff of its changes to review (into `context`), then
    True once Apply sends back the digest of exactly the changes shown."""
    shown = digest(form.changes)
    if not form.changes:
        form.add_error(None, f"Nothing to change: the form matches the {what}.")
        return False
    if request.POST.get("confirm") == shown:
        return True
    context.update(diff=diff_rows(form.changes), digest=shown)
    return False

