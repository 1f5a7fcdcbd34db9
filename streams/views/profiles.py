"""Connection profiles: list, detail, create, edit, delete, Test connection, and the advisory
capture stream's check."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, health, policy, profiles, system_streams
from streams.forms.profiles import ProfileForm
from streams.models import (
    Approval,
    ApprovalStatus,
    Following,
    Job,
    JobKind,
    Profile,
    Role,
    Team,
    WorkerHeartbeat,
)
from streams.views.http import HtmxHttpRequest, job_card, may, page_or_partial, refuse


def profile_list(request: HttpRequest) -> HttpResponse:
    return render(request, "streams/profile_list.html", {
        "profiles": policy.profiles(request.user).select_related("team", "health"),
        "can_add": policy.adds_profiles(request.user)})


@may("view")
def profile_detail(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    jobs = profile.jobs.asked().select_related("actor")[:10]
    template = page_or_partial(request, "streams/profile_detail.html", "profile_body")
    return render(request, template, {
        "profile": profile, "jobs": jobs, "capture": system_streams.CAPTURE_CONFIG,
        "waiting": Approval.objects.filter(job__profile=profile, status=ApprovalStatus.PENDING)
        .select_related("job"),
        **_listener(profile)})


def _listener(profile: Profile) -> dict[str, Any]:
    """Whether the advisory listener follows the profile, as far as its heartbeat says it
    runs at all (a listener killed outright leaves its rows behind)."""
    if not profile.record_outside:
        return {}
    seen = not health.late(WorkerHeartbeat.LISTENER, settings.ADVISORY_REREAD_INTERVAL)
    return {"listener_seen": seen,
            "following": Following.objects.filter(profile=profile).first() if seen else None}


# The secrets a profile form posts never reach an error report, even with DEBUG on.
hide_secrets = sensitive_post_parameters(*Profile.SECRET_FIELDS)


@require_http_methods(["GET", "POST"])
@hide_secrets
def profile_create(request: HttpRequest) -> HttpResponse:
    """A new connection, in a team whose admin the user is."""
    if not policy.adds_profiles(request.user):
        refuse(request, "profile.create",
               "only a team's admins add connections to it: you are admin of no team")
    if request.user.is_superuser:
        Team.objects.default()  # a fresh dashboard's first connection has a team to go in
    teams = policy.teams(request.user, Role.ADMIN)
    form = ProfileForm(request.POST or None, request.FILES or None, teams=teams)
    if request.method == "POST" and form.is_valid():
        profile = profiles.save(form.save(commit=False), audit.Context.from_request(request))
        return redirect("profile_detail", pk=profile.pk)
    return render(request, "streams/profile_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
@may("profile.edit")
@hide_secrets
def profile_edit(request: HttpRequest, profile: Profile) -> HttpResponse:
    before = audit.profile_snapshot(profile)
    form = ProfileForm(request.POST or None, request.FILES or None, instance=profile,
                       teams=policy.teams(request.user, Role.ADMIN))
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


@require_http_methods(["GET", "POST"])
@may("profile.delete")
def profile_delete(request: HttpRequest, profile: Profile) -> HttpResponse:
    if request.method == "POST":
        profiles.delete(profile, audit.Context.from_request(request))
        return redirect("profile_list")
    return render(request, "streams/profile_delete.html", {"profile": profile})


@require_POST
@may("test")
def profile_test(request: HttpRequest, profile: Profile) -> HttpResponse:
    job = Job.objects.submit(JobKind.TEST_CONNECTION, profile,
                             audit.Context.from_request(request))
    if not request.htmx:
        return redirect("job_detail", pk=job.pk)
    return job_card(request, job.wait())


@require_POST
@may("profile.edit")
def profile_capture(request: HttpRequest, profile: Profile) -> HttpResponse:
    """Make or remove the capture stream as the profile says, and read its size."""
    job = Job.objects.submit(JobKind.ADVISORY_CAPTURE, profile,
                             audit.Context.from_request(request),
                             target=system_streams.CAPTURE_STREAM)
    if not request.htmx:
        return redirect("job_detail", pk=job.pk)
    return job_card(request, job.wait())
