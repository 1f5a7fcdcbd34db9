"""Changes awaiting approval: the list (those a user may decide, and their own), one request
with exactly what would run and what changed since it was asked, and the decision."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from streams import approvals, audit, consumer_config, policy, stream_config
from streams.models import Approval, ApprovalStatus, Job, JobKind
from streams.views.http import may, refuse


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(
        attrs={"rows": 2}))
    seen = forms.CharField(max_length=64, widget=forms.HiddenInput)


def approval_list(request: HttpRequest) -> HttpResponse:
    visible = Approval.objects.filter(job__in=Job.objects.seen_by(request.user)).select_related(
        "job", "job__profile", "job__profile__team")
    # One past its time waits for the worker's housekeeping to expire it: no longer offered.
    pending = list(visible.filter(status=ApprovalStatus.PENDING,
                                  expires_at__gt=timezone.now()))
    return render(request, "streams/approval_list.html", {
        "to_decide": [a for a in pending
                      if policy.approval_refusal(request.user, a.job) is None],
        "mine": [a for a in pending if a.job.actor_id == request.user.pk],
        "decided": visible.exclude(status=ApprovalStatus.PENDING)[:50],
    })


@may("view", of=Job)
def approval_detail(request: HttpRequest, job: Job) -> HttpResponse:
    return _page(request, job)


def _page(request: HttpRequest, job: Job, form: DecisionForm | None = None,
          error: str = "", status: int = 200) -> HttpResponse:
    approval = Approval.objects.filter(job=job).select_related("job__profile__team").first()
    if approval is None:
        return redirect("job_detail", pk=job.pk)
    current = approvals.current_config(approval)
    # A consumer's changes are labelled as its form labels them.
    config = consumer_config if JobKind(job.kind).family == "consumer" else stream_config
    context: dict[str, Any] = {
        "approval": approval, "job": job, "profile": job.profile,
        "changes": [(config.label_of_key(key), config.format_value(key, old),
                     config.format_value(key, new))
                    for key, (old, new) in (job.params.get("changes") or {}).items()],
        "params": job.public_params,
        "params_json": json.dumps(job.public_params, indent=2, sort_keys=True),
        "since": [(stream_config.label_of_key(key), then, now)
                  for key, (then, now) in approvals.changes_since(approval).items()],
        "refusal": policy.approval_refusal(request.user, job),
        "form": form or DecisionForm(initial={"seen": approvals.fingerprint(current)}),
        "error": error,
    }
    return render(request, "streams/approval_detail.html", context, status=status)


@require_POST
@may("view", of=Job)
def approval_decide(request: HttpRequest, job: Job) -> HttpResponse:
    if reason := policy.approval_refusal(request.user, job):
        refuse(request, "approve", reason, job.profile)
    approval = Approval.objects.filter(job=job).first()
    form = DecisionForm(request.POST)
    if approval is None or not form.is_valid():
        return _page(request, job, form, status=400)
    context = audit.Context.from_request(request)
    comment = form.cleaned_data["comment"].strip()
    try:
        if form.cleaned_data["decision"] == "approve":
            approvals.approve(approval, context, comment=comment,
                              seen=form.cleaned_data["seen"])
        else:
            approvals.reject(approval, context, comment=comment)
    except approvals.DecisionRefused as refused:
        return _page(request, job, error=str(refused), status=409)
    return redirect("approval_detail", pk=job.pk)
