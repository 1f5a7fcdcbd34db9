"""Stream definitions as files and between profiles: export them as the JSON natscli reads,
import such files, copy definitions to another profile. What would change streams ends in a
plan (streams.plans), shown before anything is applied."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, policy, stream_json
from streams.forms.transfer import CopyForm, ImportForm
from streams.models import AuditEvent, Plan, Profile
from streams.views.http import HtmxHttpRequest, may, refused


@require_POST
@may("view")
def definitions_export(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    """The ticked streams (`name`), or with `all` every stream of the profile but the system
    ones: one as its JSON file, several as a .zip of them. A managed stream is its definition;
    any other its live config as last read, as `nats stream info -j` shows it (stream_json
    leaves out what only the server writes)."""
    defined, live = profile.stream_definitions.all(), profile.streams.exclude(info=None)
    if request.POST.get("all"):
        live = live.filter(system_kind="")
    else:
        names = request.POST.getlist("name")
        defined, live = defined.filter(name__in=names), live.filter(name__in=names)
    definitions = dict(defined.values_list("name", "config"))
    unmanaged = {name: info["config"] for name, info in live.values_list("name", "info")
                 if name not in definitions and isinstance(info.get("config"), dict)}
    configs = dict(sorted({**definitions, **unmanaged}.items()))
    if not configs:
        return refused(request, "Nothing to export: no stream was chosen.")
    AuditEvent.objects.record("definitions.exported", audit.Context.from_request(request),
                              target_type="profile", target_name=profile.name, profile=profile,
                              outcome="succeeded",
                              after={"streams": list(configs),
                                     **({"live": list(unmanaged)} if unmanaged else {})},
                              message=f"exported {len(configs)} stream configuration(s)"
                                      + (f", {len(unmanaged)} of them unmanaged, as last read"
                                         if unmanaged else ""))
    if len(configs) == 1:
        [(name, config)] = configs.items()
        response = HttpResponse(stream_json.dumps(config), content_type="application/json")
        filename = stream_json.file_name(name)
    else:
        response = HttpResponse(stream_json.zipped(configs), content_type="application/zip")
        filename = f"{profile.name}-streams.zip"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@require_http_methods(["GET", "POST"])
@may("definitions.import")
def definitions_import(request: HttpRequest, profile: Profile) -> HttpResponse:
    posted = request.method == "POST"
    form = ImportForm(request.POST if posted else None, request.FILES if posted else None,
                      profile=profile)
    if posted and form.is_valid():
        plan = Plan.objects.propose(profile, form.desired, origin="import",
                                    context=audit.Context.from_request(request))
        return redirect("plan_detail", plan.pk)
    return render(request, "streams/definitions_import.html", {"profile": profile, "form": form})


@require_http_methods(["GET", "POST"])
@may("view")
def definitions_copy(request: HttpRequest, profile: Profile) -> HttpResponse:
    """Reached with the streams ticked on the list (or none: every definition); sent again
    with the profile to copy them to."""
    source = profile
    bound = request.method == "POST" and "target" in request.POST
    ticked = (request.POST if request.method == "POST" else request.GET).getlist("name")
    targets = policy.profiles(request.user)
    form = CopyForm(request.POST if bound else None, initial={"name": ticked}, source=source,
                    targets=targets.filter(pk__in=[target.pk for target in targets if
                                                   policy.may(request.user, "definitions.copy",
                                                              target)]))
    if bound and form.is_valid():
        plan = Plan.objects.propose(form.cleaned_data["target"], form.desired,
                                    origin=f"copy from {source.name}",
                                    context=audit.Context.from_request(request))
        return redirect("plan_detail", plan.pk)
    return render(request, "streams/definitions_copy.html", {"profile": source, "form": form})
