"""Streams of a profile: the listing, a stream's detail, and the forms that create, edit,
purge and delete one, each handing its broker work to a job."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, definitions, stream_config, system_streams
from streams.filters import STREAM_COLUMNS, StreamFilter
from streams.forms.streams import DeleteStreamForm, PurgeForm, StreamForm
from streams.models import (
    BrokerKind,
    ConnectionHealth,
    Job,
    JobKind,
    JobStatus,
    Profile,
    Stream,
    StreamDefinition,
    StreamStatus,
    StreamSync,
)
from streams.models.health import stream_history
from streams.views.http import (
    HtmxHttpRequest,
    addressed_job,
    confirmed,
    form_response,
    job_card,
    job_context,
    may,
    page_or_partial,
    reading,
    refused,
    sent,
    stream_or_gone,
    with_broker_error,
)

STREAM_PAGE = 50
# The jobs a stream's page lists: those acting on the stream or its consumers.
STREAM_JOB_KINDS = [kind for kind in JobKind
                    if kind.target_type == "stream" and kind.family in {"stream", "consumer"}]


def _changeable(stream: Stream, verb: str) -> str:
    """Why this stream cannot be changed here at all ("" when it can)."""
    if stream.system_kind:
        return f"This is a {stream.system_label} stream, read-only here: it cannot be {verb}."
    if stream.sync == StreamSync.MISSING:
        return (f"It was deleted outside the dashboard: it cannot be {verb}. Its definition "
                "is kept: apply it to create the stream again.")
    if stream.status == StreamStatus.GONE:
        return (f"It is no longer on the server ({stream.status_reason}): it cannot be {verb}. "
                "Refresh the list to drop it.")
    if not stream.config:
        return f"Its configuration could not be read ({stream.status}): it cannot be {verb}."
    return stream_config.destruction_refusal(stream.config, verb) if verb != "changed" else ""


def _cluster_size(profile: Profile) -> int:
    """As the last check, or else the last job that talked to the server, reported it."""
    checked = ConnectionHealth.objects.filter(profile=profile).values_list(
        "report__cluster_size", flat=True).first()
    if checked:
        return int(checked)
    results = profile.jobs.filter(status=JobStatus.SUCCEEDED).values_list("result", flat=True)
    for result in results[:20]:
        if result and "cluster_size" in result:
            return int(result["cluster_size"])
    return 1


def _last_read(profile: Profile, kind: str, target: str = "") -> tuple[Job | None, Job | None]:
    """The last read of these rows that succeeded, and the last one if it failed since."""
    reads = profile.jobs.filter(kind=kind, status__in=Job.FINISHED).order_by("-finished_at")
    last = (reads.filter(target=target) if target else reads).first()
    if last is None or last.status == JobStatus.SUCCEEDED:
        return last, None
    return (reads.filter(target=target) if target else reads).filter(
        status=JobStatus.SUCCEEDED).first(), last


def _seconds_since(job: Job | None) -> int | None:
    return int((timezone.now() - job.finished_at).total_seconds()) if job else None


@may("view")
def stream_list(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    template = page_or_partial(request, "streams/stream_list.html", "stream_table")
    return render(request, template, listing(profile, request.GET))


def listing(profile: Profile, data: QueryDict) -> dict[str, Any]:
    """The stream table of a profile, filtered, sorted and paged as `data` asks."""
    filters = StreamFilter(data, queryset=profile.streams.defer("info").order_by("name"))
    page = Paginator(filters.qs, STREAM_PAGE).get_page(data.get("page"))
    shown = filters.form.cleaned_data
    last_listing, failed_read = _last_read(profile, JobKind.STREAM_LIST)
    hidden = [] if shown.get("system") else _hidden(profile, data)
    return {
        "profile": profile,
        "filters": filters,
        "page": page,
        "query": filters.in_use,
        "sort": filters.order,
        "columns": STREAM_COLUMNS,
        "narrowed": bool(shown.get("q") or shown.get("subject")),
        "last_listing": last_listing,
        "failed_read": failed_read,
        "read_seconds": _seconds_since(last_listing),
        "read_due": Job.objects.read_due(JobKind.STREAM_LIST, profile),
        "hidden": hidden,
        "hidden_count": sum(count for count, _ in hidden),
        "sync_counts": _sync_counts(profile),
    }


def _hidden(profile: Profile, data: QueryDict) -> list[tuple[int, str]]:
    """The system streams the other filters would show, counted by kind (KV buckets, object
    stores, Memphis's own…), each with its name in the singular or plural."""
    everything = data.copy()
    everything["system"] = "on"
    system = StreamFilter(everything, queryset=profile.streams.exclude(system_kind="")).qs
    counts = system.order_by().values_list("system_kind").annotate(n=Count("pk"))
    return [(n, system_streams.system_noun(kind, n)) for kind, n in sorted(counts)]


def _sync_counts(profile: Profile) -> list[tuple[str, str, int]]:
    """How many of the user's streams are in each state against their definitions."""
    counts = dict(profile.streams.filter(system_kind="").values_list("sync")
                  .annotate(n=Count("pk")).values_list("sync", "n"))
    return [(value, label, counts.get(value, 0)) for value, label in StreamSync.choices]


@require_POST
@may("view")
def stream_list_refresh(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    """Read the listing again. A quick job's answer is its card and the table itself, as the
    page's filters (sent along) show it: one response, nothing to reload."""
    job = Job.objects.submit(JobKind.STREAM_LIST, profile, audit.Context.from_request(request))
    if not request.htmx:
        return redirect("stream_list", pk=profile.pk)
    job = job.wait()
    if job.waits_for_worker:  # the card polls; the table reloads when it ends
        return job_card(request, job)
    return render(request, "streams/stream_list.html#refreshed",
                  {**listing(profile, request.POST), "job": job})


@require_POST
@may("view")
def stream_list_read(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    """Asked by the table as it loads when its rows are due: see Job.objects.read_again."""
    return reading(request, Job.objects.read_again(JobKind.STREAM_LIST, profile,
                                       audit.Context.from_request(request)))


@require_POST
@may("definitions.adopt")
def stream_adopt(request: HtmxHttpRequest, profile: Profile) -> HttpResponse:
    """Adopt the ticked streams, or with `matching` every unmanaged one the filters show: each
    one's live config, read again by the job, becomes its definition."""
    unmanaged = profile.streams.filter(sync=StreamSync.UNMANAGED, system_kind="")
    if request.POST.get("matching"):
        unmanaged = StreamFilter(request.POST, queryset=unmanaged).qs
    else:
        unmanaged = unmanaged.filter(name__in=request.POST.getlist("name"))
    names = list(unmanaged.order_by("name").values_list("name", flat=True))
    if not names:
        return refused(request, "Nothing to adopt: no unmanaged stream was chosen.")
    job = Job.objects.submit(JobKind.STREAM_ADOPT, profile, audit.Context.from_request(request),
                             params={"names": names})
    if not request.htmx:
        return redirect("stream_list", pk=profile.pk)
    job = job.wait()
    if job.waits_for_worker:
        return job_card(request, job)
    return render(request, "streams/stream_list.html#refreshed",
                  {**listing(profile, request.POST), "job": job})


@may("view")
def stream_detail(request: HttpRequest, profile: Profile, name: str) -> HttpResponse:
    return render(request, page_or_partial(request, "streams/stream_detail.html", "stream_body"),
                  _detail(profile, stream_or_gone(profile, name)))


def _detail(profile: Profile, stream: Stream) -> dict[str, Any]:
    config = stream.config
    consumers = list(profile.consumers.filter(stream_name=stream.name).defer("info"))
    last_read, failed_read = _last_read(profile, JobKind.STREAM_INFO, stream.name)
    return {
        "profile": profile,
        "stream": stream,
        "config_rows": [(stream_config.label_of_key(key), stream_config.format_value(key, value))
                        for key, value in _config_rows(config)],
        "state": (stream.info or {}).get("state") or {},
        "cluster": (stream.info or {}).get("cluster") or {},
        "mirror": (stream.info or {}).get("mirror"),
        "sources": (stream.info or {}).get("sources") or [],
        "jobs": profile.jobs.filter(target=stream.name, kind__in=STREAM_JOB_KINDS)[:20],
        "refusal": stream_config.destruction_refusal(config, "purged"),
        "consumers": consumers,
        "lag": sum(consumer.pending or 0 for consumer in consumers),
        # Consumers are read with the stream (a listing reads only their count), so they are
        # as old as its last read; the page counts them once, by their rows.
        "consumers_read_seconds": _seconds_since(last_read),
        "failed_read": failed_read,
        "read_due": Job.objects.read_due(JobKind.STREAM_INFO, profile, stream.name),
        "memphis": profile.broker_kind == BrokerKind.MEMPHIS and not stream.system_kind,
        "station": stream.name.replace("#", "."),  # Memphis turns a station's dots into #
        "definition": StreamDefinition.objects.filter(profile=profile, name=stream.name).first(),
        "history": stream_history(profile.pk, stream.name),
        "drift": [(label, stream_config.format_value(key, defined),
                   stream_config.format_value(key, live))
                  for key, label, defined, live in definitions.labelled(stream.drift or {})],
    }


def _config_rows(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """The config in the form's order and labels; keys the form does not know come last."""
    keys = stream_config.api_keys(list(stream_config.LABELS))
    known = [(key, config.get(key)) for key in keys if key in config or key in
             stream_config.BASIC_API_KEYS]
    return known + [(key, value) for key, value in config.items() if key not in keys]


@require_POST
@may("view")
def stream_read(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    """Asked by the stream's page as it loads when its rows are due (Job.objects.read_again)."""
    return reading(request, Job.objects.read_again(JobKind.STREAM_INFO, profile,
                                       audit.Context.from_request(request), target=name))


@require_POST
@may("view")
def stream_refresh(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    """Read the stream again; a quick job's answer is its card and the refreshed details."""
    job = Job.objects.submit(JobKind.STREAM_INFO, profile, audit.Context.from_request(request),
                             target=name)
    if not request.htmx:
        return redirect("stream_detail", pk=profile.pk, name=name)
    job = job.wait()
    stream = Stream.objects.filter(profile=profile, name=name).first()
    if job.waits_for_worker or stream is None:  # still running, or gone: the card says which
        return job_card(request, job)
    return render(request, "streams/stream_detail.html#refreshed",
                  {**_detail(profile, stream), "job": job})


def _form_context(profile: Profile, form: StreamForm, **extra: Any) -> dict[str, Any]:
    # A callable: only the full page (not an htmx fragment) needs it, and it costs a query.
    return {"profile": profile, "form": form,
            "replica_counts": lambda: [1, 3] if _cluster_size(profile) >= 3 else [1], **extra}


def _render_form(request: HttpRequest, form: StreamForm, context: dict[str, Any]) -> HttpResponse:
    return form_response(request, "streams/stream_form.html", form, context)


@require_http_methods(["GET", "POST"])
@may("stream.create")
def stream_create(request: HttpRequest, profile: Profile) -> HttpResponse:
    if "job" in request.GET:
        return _create_outcome(request, profile,
                               addressed_job(profile, JobKind.STREAM_CREATE, request))
    form = StreamForm(request.POST or None, profile=profile)
    context = _form_context(profile, form)
    if sent(request, form):
        job = Job.objects.submit(
            JobKind.STREAM_CREATE, profile, audit.Context.from_request(request),
            target=form.config["name"], params={"config": form.config},
        ).wait()
        return _create_outcome(request, profile, job)
    return _render_form(request, form, context)


def _create_outcome(request: HttpRequest, profile: Profile, job: Job) -> HttpResponse:
    """The form region of a create job: while it runs, the answers, disabled; once it ended,
    the outcome, or the answers again with the broker's error on its field."""
    form = with_broker_error(job, StreamForm(stream_config.to_initial(job.params["config"]),
                                              profile=profile))
    return _render_form(request, form, _form_context(profile, form, **job_context(job)))


@require_http_methods(["GET", "POST"])
@may("stream.edit")
def stream_edit(request: HttpRequest, profile: Profile, name: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    if "job" in request.GET:  # the job ended (perhaps finding the stream gone)
        return _edit_outcome(request, profile, stream,
                             addressed_job(profile, JobKind.STREAM_UPDATE, request,
                                           target=name))
    if refusal := _changeable(stream, "changed"):
        raise PermissionDenied(refusal)
    form = StreamForm(request.POST or None, profile=profile, current=stream.config)
    context = _form_context(profile, form, stream=stream)
    if sent(request, form) and confirmed(request, form, context, "stream", _diff_rows):
        job = Job.objects.submit(
            JobKind.STREAM_UPDATE, profile, audit.Context.from_request(request),
            target=name, params={"changes": form.changes, "config": form.config},
        ).wait()
        return _edit_outcome(request, profile, stream_or_gone(profile, name), job)
    return _render_form(request, form, context)


def _edit_outcome(request: HttpRequest, profile: Profile, stream: Stream,
                  job: Job) -> HttpResponse:
    """The form region of an edit job: while it runs, the user's changes, disabled; once it
    ended, the outcome and what changed, or the user's changes over the config as it is now
    (so that sending the form again changes those fields only) with the broker's error on its
    field."""
    current = stream.config
    answers = stream_config.to_initial(stream_config.apply(current, job.params["changes"]))
    form = with_broker_error(job, StreamForm(
        {**answers, "loaded": StreamForm.sign(current)}, profile=profile, current=current))
    context = _form_context(profile, form, stream=stream, **job_context(job),
                            diff=_diff_rows(job.params["changes"])
                            if job.status == JobStatus.SUCCEEDED else None)
    return _render_form(request, form, context)


def _diff_rows(changes: dict[str, list[Any]]) -> list[tuple[str, str, str]]:
    return [(stream_config.label_of_key(key), stream_config.format_value(key, old),
             stream_config.format_value(key, new)) for key, (old, new) in changes.items()]


@require_http_methods(["GET", "POST"])
@may("stream.delete")
def stream_delete(request: HttpRequest, profile: Profile, name: str) -> HttpResponse:
    if "job" in request.GET:  # its card ended: the outcome, the stream's row likely gone
        job = addressed_job(profile, JobKind.STREAM_DELETE, request, target=name)
        return render(request, page_or_partial(request, "streams/stream_delete.html",
                                               "delete_region"),
                      {"profile": profile, "stream": Stream(name=name), "job": job})
    stream = stream_or_gone(profile, name)
    form = DeleteStreamForm(request.POST or None, stream_name=name, info=stream.info)
    context: dict[str, Any] = {
        "profile": profile, "stream": stream, "form": form,
        "refusal": _changeable(stream, "deleted"),
    }
    if request.method == "POST" and not context["refusal"] and form.is_valid():
        context["job"] = Job.objects.submit(JobKind.STREAM_DELETE, profile,
                                            audit.Context.from_request(request), target=name,
                                            params=form.seen_params).wait()
    return render(request, page_or_partial(request, "streams/stream_delete.html", "delete_region"),
                  context)


@require_http_methods(["GET", "POST"])
@may("stream.purge")
def stream_purge(request: HttpRequest, profile: Profile, name: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    form = PurgeForm(request.POST or None, info=stream.info)
    context: dict[str, Any] = {
        "profile": profile, "stream": stream, "form": form,
        "refusal": _changeable(stream, "purged"),
    }
    if "job" in request.GET:  # its card ended: the outcome
        context["job"] = addressed_job(profile, JobKind.STREAM_PURGE, request, target=name)
    if request.method == "POST" and not context["refusal"] and form.is_valid():
        context["job"] = Job.objects.submit(JobKind.STREAM_PURGE, profile,
                                            audit.Context.from_request(request), target=name,
                                            params={**form.params, **form.seen_params}).wait()
    return render(request, page_or_partial(request, "streams/stream_purge.html", "purge_region"),
                  context)
