"""Plans: asking for one (the stream list, a stream's page), the page that shows what apply
would do and then what it did, and applying it. The planning and the applying are jobs."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from streams import audit
from streams.filters import StreamFilter
from streams.forms.plans import ApplyForm, PlanForm
from streams.models import Job, JobKind, JobStatus, Plan, Profile, StreamDefinition, StreamSync
from streams.plans import steps as planning
from streams.views.http import HtmxHttpRequest, check, job_context, may, page_or_partial
from streams.views.streams import listing


def _to_plan(request: HtmxHttpRequest, plan: Plan) -> HttpResponse:
    url = reverse("plan_detail", args=[plan.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@may("plan")
def plan_create(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    """A plan to make the ticked streams, the managed ones the filters show, or the whole
    connection match their definitions (the last perhaps deleting what has none)."""
    form = PlanForm(request.POST, profile_name=profile.name)
    if form.is_valid():
        definitions = StreamDefinition.objects.filter(profile=profile)
        scope = form.cleaned_data["scope"]
        if scope == "ticked":
            definitions = definitions.filter(name__in=request.POST.getlist("name"))
        elif scope == "matching":
            managed = profile.streams.exclude(sync=StreamSync.UNMANAGED).filter(system_kind="")
            shown = StreamFilter(request.POST, queryset=managed).qs
            definitions = definitions.filter(name__in=shown.values("name"))
        desired = dict(definitions.order_by("name").values_list("name", "config"))
        if desired or form.cleaned_data["delete_missing"]:
            return _to_plan(request, Plan.objects.propose(
                profile, desired, origin="definitions",
                context=audit.Context.from_request(request),
                delete_missing=form.cleaned_data["delete_missing"]))
        form.add_error("scope", "No definition to plan for: tick managed streams, or adopt "
                                "some first.")
    if not request.htmx:  # posted by the browser itself: the list again, with the errors
        return render(request, "streams/stream_list.html",
                      {**listing(profile, request.POST), "plan_form": form})
    return render(request, "streams/stream_list.html#plan_form",
                  {"profile": profile, "plan_form": form})


@require_POST
@may("plan")
def stream_plan(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    """A plan to put one stream back as its definition says (drifted, or deleted outside)."""
    definition = get_object_or_404(StreamDefinition, profile=profile, name=name)
    return _to_plan(request, Plan.objects.propose(
        profile, {name: definition.config}, origin=f"restore the definition of {name}",
        context=audit.Context.from_request(request)))


@may("view", of=Plan)
def plan_detail(request: HtmxHttpRequest, plan: Plan) -> HttpResponse:
    return render(request, page_or_partial(request, "streams/plan_detail.html", "plan_body"),
                  _plan_context(plan))


def _apply_form(plan: Plan, data: Any = None) -> ApplyForm:
    deletes = planning.counts(plan.steps or [])[planning.DELETE]
    return ApplyForm(data, deletes=deletes, profile_name=plan.profile.name)


def _plan_context(plan: Plan, form: ApplyForm | None = None) -> dict[str, Any]:
    # The jobs first, then what they write into the plan: a job read as ended has its steps
    # and outcomes in, one read as running has a card that polls. The other way round, a job
    # ending in between left a page with neither the steps nor a card that would bring them.
    plan_card = job_context(plan.plan_job) if plan.plan_job else None
    apply_card = job_context(plan.apply_job) if plan.apply_job else None
    plan.refresh_from_db(fields=["steps", "outcomes"])
    planned = plan.steps or []
    return {
        "plan": plan,
        "profile": plan.profile,
        "counts": planning.counts(planned),
        # What does something, or did: unchanged streams are only counted.
        "rows": [(step, planning.change_rows(step), plan.outcomes.get(step["name"]))
                 for step in planned
                 if step["action"] != planning.UNCHANGED or step["name"] in plan.outcomes],
        "form": form or _apply_form(plan),  # built from the steps as just read
        "plan_card": plan_card,
        "apply_card": apply_card,
    }


@require_POST
@may("plan.apply", of=Plan)
def plan_apply(request: HtmxHttpRequest, plan: Plan) -> HttpResponse:
    """Apply a worked-out plan, once. Its deletions run only with the connection's name typed
    here, whoever proposed the plan, and by someone who may delete streams."""
    form = _apply_form(plan, request.POST)
    if planning.counts(plan.steps or [])[planning.DELETE]:
        check(request, "plan.delete", plan.profile)
    if form.is_valid():
        with transaction.atomic():  # one apply per plan, however many clicks
            plan = Plan.objects.select_for_update().select_related("profile").get(pk=plan.pk)
            if plan.steps is None and plan.plan_job and plan.plan_job.status == JobStatus.FAILED:
                form.add_error(None, f"Working out this plan failed ({plan.plan_job.error}): "
                                     "plan again.")
            elif plan.steps is None:
                form.add_error(None, "The plan is still being worked out.")
            elif plan.apply_job_id is not None:
                form.add_error(None, "This plan was applied already: plan again.")
            else:
                plan.apply_job = Job.objects.submit(
                    JobKind.STREAM_APPLY, plan.profile, audit.Context.from_request(request),
                    params={"plan": plan.pk, "origin": plan.origin,
                            "deletes_confirmed": bool(form.deletes)})
                plan.save(update_fields=["apply_job"])
    if not request.htmx and not form.errors:
        return redirect("plan_detail", pk=plan.pk)
    plan = Plan.objects.select_related("profile", "plan_job", "apply_job").get(pk=plan.pk)
    return render(request, page_or_partial(request, "streams/plan_detail.html", "plan_body"),
                  _plan_context(plan, form))

