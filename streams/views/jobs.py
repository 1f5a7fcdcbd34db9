"""Jobs: the list, and the job card a page polls until the job ends."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django_htmx.http import HttpResponseStopPolling

from streams.jobs import reaper
from streams.models import Job, JobKind, JobStatus, Profile
from streams.views.http import page_or_partial, permission_required


@permission_required("streams.view_job")
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = Job.objects.select_related("profile", "actor")
    filters = {key: request.GET.get(key, "") for key in ("status", "kind", "profile")}
    if filters["status"]:
        jobs = jobs.filter(status=filters["status"])
    if filters["kind"]:
        jobs = jobs.filter(kind=filters["kind"])
    if filters["profile"]:
        jobs = jobs.filter(profile_name=filters["profile"])
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "statuses": JobStatus.choices,
        "kinds": JobKind.choices,
        "profile_names": Profile.objects.values_list("name", flat=True),
    }
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


