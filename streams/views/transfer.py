"""Stream definitions as files and between profiles: export them as the JSON natscli reads,
import such files, copy definitions to another profile. What would change streams ends in a
plan (streams.plans), shown before anything is applied."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, plans, stream_json
from streams.forms.transfer import CopyForm, ImportForm
from streams.models import Profile
from streams.views.http import permission_required


@permission_required("streams.view_streamdefinition")
@require_POST
def definitions_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The ticked definitions (`name`), or with `all` every one of the profile: one stream's
    as its JSON file, several as a .zip of them."""
    profile = get_object_or_404(Profile, pk=pk)
    chosen = profile.stream_definitions.order_by("name")
    if not request.POST.get("all"):
        chosen = chosen.filter(name__in=request.POST.getlist("name"))
    configs = dict(chosen.values_list("name", "config"))
    if not configs:
        return HttpResponse("Nothing to export: no stream with a definition was chosen.",
                            status=400)
    audit.record("definitions.exported", audit.Context.from_request(request),
                 target_type="profile", target_name=profile.name, profile=profile,
                 outcome="succeeded", after={"streams": list(configs)},
                 message=f"exported {len(configs)} definition(s)")
    if len(configs) == 1:
        [(name, config)] = configs.items()
        response = HttpResponse(stream_json.dumps(config), content_type="application/json")
        filename = stream_json.file_name(name)
    else:
        response = HttpResponse(stream_json.zipped(configs), content_type="application/zip")
        filename = f"{profile.name}-streams.zip"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@permission_required("streams.add_streamdefinition")
@require_http_methods(["GET", "POST"])
def definitions_import(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=pk)
    posted = request.method == "POST"
    form = ImportForm(request.POST if posted else None, request.FILES if posted else None,
                      profile=profile)
    if posted and form.is_valid():
        plan = plans.propose(profile, form.desired, origin="import",
                             context=audit.Context.from_request(request))
        return redirect("plan_detail", plan.pk)
    return render(request, "streams/definitions_import.html", {"profile": profile, "form": form})


@permission_required("streams.add_streamdefinition")
@require_http_methods(["GET", "POST"])
def definitions_copy(request: HttpRequest, pk: int) -> HttpResponse:
    """Reached with the streams ticked on the list (or none: every definition); sent again
    with the profile to copy them to."""
    source = get_object_or_404(Profile, pk=pk)
    bound = request.method == "POST" and "target" in request.POST
    ticked = (request.POST if request.method == "POST" else request.GET).getlist("name")
    form = CopyForm(request.POST if bound else None, initial={"name": ticked}, source=source)
    if bound and form.is_valid():
        plan = plans.propose(form.cleaned_data["target"], form.desired,
                             origin=f"copy from {source.name}",
                             context=audit.Context.from_request(request))
        return redirect("plan_detail", plan.pk)
    return render(request, "streams/definitions_copy.html", {"profile": source, "form": form})
