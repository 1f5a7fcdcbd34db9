"""Connection profiles: list, detail, create, edit, delete, Test connection, and the advisory
capture stream's check."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, profiles, system_streams
from streams.forms.profiles import ProfileForm
from streams.models import Job, JobKind, Profile
from streams.views.http import HtmxHttpRequest, job_card, page_or_partial, permission_required


@permission_required("streams.view_profile")
def profile_list(request: HttpRequest) -> HttpResponse:
    return render(request, "streams/profile_list.html", {"profiles": Profile.objects.all()})


@permission_required("streams.view_profile")
def profile_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    jobs = profile.jobs.select_related("actor")[:10]
    template = page_or_partial(request, "streams/profile_detail.html", "profile_body")
    return render(request, template, {
        "profile": profile, "jobs": jobs, "capture": system_streams.CAPTURE_CONFIG})


# The secrets a profile form posts never reach an error report, even with DEBUG on.
hide_secrets = sensitive_post_parameters(*Profile.SECRET_FIELDS)


@permission_required("streams.add_profile")
@require_http_methods(["GET", "POST"])
@hide_secrets
def profile_create(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        profile = profiles.save(form.save(commit=False), audit.Context.from_request(request))
        return redirect("profile_detail", pk=profile.pk)
    return render(request, "streams/profile_form.html", {"form": form})


@permission_required("streams.change_profile")
@require_http_methods(["GET", "POST"])
@hide_secrets
def profile_edit(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    before = audit.profile_snapshot(profile)
    form = ProfileForm(request.POST or None, request.FILES or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        try:
            profiles.save(form.save(commit=False), audit.Context.from_request(request),
                          before=before, loaded_at=form.cleaned_data["loaded_at"],
                          secrets_changed=form.changed_secrets)
        except profiles.ChangedMeanwhile:
            form.add_error(None, "Someone else saved this connection since you opened this "
                                 "form: reload it to see their change, then edit again.")
        else:
            return redirect("profile_detail", pk=profile.pk)
    return render(request, "streams/profile_form.html", {"form": form, "profile": profile})


@permission_required("streams.delete_profile")
@require_http_methods(["GET", "POST"])
def profile_delete(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    if request.method == "POST":
        profiles.delete(profile, audit.Context.from_request(request))
        return redirect("profile_list")
    return render(request, "streams/profile_delete.html", {"profile": profile})


@permission_required("streams.view_profile")
@require_POST
def profile_test(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    job = Job.objects.submit(JobKind.TEST_CONNECTION, profile,
                             audit.Context.from_request(request))
    if not request.htmx:
        return redirect("job_detail", pk=job.pk)
    return job_card(request, job.wait())




@permission_required("streams.change_profile")
@require_POST
def profile_capture(request: HttpRequest, pk: int) -> HttpResponse:
    """Make or remove the capture stream as the profile says, and read its size."""
    profile = get_object_or_404(Profile, pk=pk)
    job = Job.objects.submit(JobKind.ADVISORY_CAPTURE, profile,
                             audit.Context.from_request(request),
                             target=system_streams.CAPTURE_STREAM)
    if not request.htmx:
        return redirect("job_detail", pk=job.pk)
    return job_card(request, job.wait())
