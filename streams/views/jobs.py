"""Jobs: the list, the job card a page polls until the job ends, and its Stop."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from streams import audit, policy
from streams.filters import JobFilter
from streams.models import Job
from streams.views.http import (
    JOB_FINISHED,
    HtmxHttpRequest,
    job_card,
    job_context,
    may,
    page_or_partial,
    refuse,
)


def job_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = JobFilter(request.GET, request=request, queryset=Job.objects.seen_by(
        request.user).select_related("profile", "actor"))
    page = Paginator(filters.qs, 50).get_page(request.GET.get("page"))
    context = {"filters": filters, "page": page, "query": filters.in_use}
    return render(request, page_or_partial(request, "streams/job_list.html", "job_table"), context)


def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The job card. Polling ends when the job has ended, or when it is overdue (a dead or
    missing worker): the card then says why, and the reaper fails the job on its schedule."""
    job = get_object_or_404(Job.objects.seen_by(request.user), pk=pk)
    context = job_context(job)
    if not request.htmx:
        return render(request, "streams/job_detail.html", context)
    response = render(request, "streams/job_detail.html#job_card", context)
    if not job.waits_for_worker or context["stalled"]:
        response.status_code = HttpResponseStopPolling.status_code
    if job.is_finished:
        response["HX-Trigger"] = JOB_FINISHED
    return response


@require_POST
@may("view", of=Job)
def job_cancel(request: HtmxHttpRequest, job: Job) -> HttpResponse:
    """Stop a running job where it safely can (an apply, between streams): whoever may run it
    on its profile may stop it. Answers its card, which says it is stopping (or has ended)."""
    if reason := policy.stop_refusal(request.user, job):
        refuse(request, job.action, reason, job.profile)
    job.cancel(audit.Context.from_request(request))
    if not request.htmx:
        return redirect("job_detail", pk=job.pk)
    job.refresh_from_db()
    return job_card(request, job)
