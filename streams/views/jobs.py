"""Jobs: the list, and the job card a page polls until the job ends."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django_htmx.http import HttpResponseStopPolling

from streams.filters import JobFilter
from streams.jobs import reaper
from streams.models import Job
from streams.views.http import HtmxHttpRequest, page_or_partial, permission_required


@permission_required("streams.view_job")
def job_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = JobFilter(request.GET, queryset=Job.objects.select_related("profile", "actor"))
    page = Paginator(filters.qs, 50).get_page(request.GET.get("page"))
    context = {"filters": filters, "page": page, "query": filters.in_use}
    return render(request, page_or_partial(request, "streams/job_list.html", "job_table"), context)


@permission_required("streams.view_job")
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    if not job.is_finished and reaper.reap_overdue(job_id=job.pk):
        job.refresh_from_db()  # overdue: failed now, so a poller never spins forever
    if request.htmx:
        response_class = HttpResponseStopPolling if job.is_finished else HttpResponse
        response = render(request, "streams/job_detail.html#job_card", {"job": job})
        stopped = response_class(response.content)
        if job.is_finished:  # regions showing what the job changes reload on this event
            stopped["HX-Trigger"] = "job-finished"
        return stopped
    return render(request, "streams/job_detail.html", {"job": job})


