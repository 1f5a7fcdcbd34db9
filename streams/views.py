from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from streams import audit, operations
from streams.forms import ProfileForm
from streams.models import Job, JobKind, JobStatus, Profile

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


def _partial(request: HttpRequest, template: str, partial: str) -> str:
    """The fragment for htmx requests, the whole page otherwise."""
    return f"{template}#{partial}" if request.htmx and not request.htmx.boosted else template


# Profiles --------------------------------------------------------------------------------------


@permission_required("streams.view_profile")
def profile_list(request: HttpRequest) -> HttpResponse:
    return render(request, "streams/profile_list.html", {"profiles": Profile.objects.all()})


@permission_required("streams.view_profile")
def profile_detail(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    jobs = profile.jobs.select_related("actor")[:10]
    return render(request, "streams/profile_detail.html", {"profile": profile, "jobs": jobs})


@permission_required("streams.add_profile")
@require_http_methods(["GET", "POST"])
def profile_create(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            profile = form.save()
            audit.record("profile.created", audit.Context.from_request(request),
                         target_type="profile", target_name=profile.name, profile=profile,
                         outcome="succeeded", after=audit.profile_snapshot(profile))
        return redirect("profile_detail", pk=profile.pk)
    return render(request, "streams/profile_form.html", {"form": form})


@permission_required("streams.change_profile")
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    before = audit.profile_snapshot(profile)
    form = ProfileForm(request.POST or None, request.FILES or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            profile = form.save()
            after = audit.profile_snapshot(profile)
            audit.record("profile.changed", audit.Context.from_request(request),
                         target_type="profile", target_name=profile.name, profile=profile,
                         outcome="succeeded", before=before, after=after,
                         changes=audit.diff(before, after, form.changed_secrets))
        return redirect("profile_detail", pk=profile.pk)
    return render(request, "streams/profile_form.html", {"form": form, "profile": profile})


@permission_required("streams.delete_profile")
@require_http_methods(["GET", "POST"])
def profile_delete(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    if request.method == "POST":
        with transaction.atomic():
            audit.record("profile.deleted", audit.Context.from_request(request),
                         target_type="profile", target_name=profile.name, outcome="succeeded",
                         before=audit.profile_snapshot(profile))
            profile.delete()
        return redirect("profile_list")
    return render(request, "streams/profile_delete.html", {"profile": profile})


@permission_required("streams.view_profile")
@require_POST
def profile_test(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    job = operations.submit(JobKind.TEST_CONNECTION, profile, audit.Context.from_request(request))
    if request.htmx:
        return render(request, "streams/job_detail.html#job_card", {"job": job})
    return redirect("job_detail", pk=job.pk)


# Jobs ------------------------------------------------------------------------------------------


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
    return render(request, _partial(request, "streams/job_list.html", "job_table"), context)


@permission_required("streams.view_job")
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=pk)
    if not job.is_finished and operations.reap_overdue(job_id=job.pk):
        job.refresh_from_db()  # overdue: failed now, so a poller never spins forever
    if request.htmx:
        response_class = HttpResponseStopPolling if job.is_finished else HttpResponse
        response = render(request, "streams/job_detail.html#job_card", {"job": job})
        return response_class(response.content)
    return render(request, "streams/job_detail.html", {"job": job})
