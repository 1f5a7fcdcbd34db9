"""A stream's consumers: the forms that create, edit, delete, pause and resume one, each handing
its broker work to a job whose answer the page shows."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, consumer_config, stream_config
from streams.forms.consumers import ConsumerForm, DeleteConsumerForm, PauseConsumerForm
from streams.models import Consumer, Job, JobKind, JobStatus, Profile, Stream, StreamStatus
from streams.views.http import (
    HtmxHttpRequest,
    addressed_job,
    confirmed,
    consumer_or_gone,
    form_response,
    job_context,
    may,
    page_or_partial,
    sent,
    stream_or_gone,
    with_broker_error,
)

FORM_TEMPLATE = "streams/consumer_form.html"


def _refusal(stream: Stream, consumer: Consumer | None = None) -> str:
    """Why consumers of this stream (or this one) cannot be managed here ("" when they can)."""
    if stream.system_kind:
        return f"This is a {stream.system_label} stream, read-only here: so are its consumers."
    if stream.status == StreamStatus.GONE or not stream.config:
        return "The stream could not be read: refresh it first."
    if consumer is not None and not consumer.config:
        return "This consumer could not be read: refresh the stream first."
    return ""


def _context(profile: Profile, stream: Stream, **extra: Any) -> dict[str, Any]:
    return {"profile": profile, "stream": stream, **extra}


def _render(request: HttpRequest, form: ConsumerForm, context: dict[str, Any]) -> HttpResponse:
    return form_response(request, FORM_TEMPLATE, form, context, typed="durable_name")


@require_http_methods(["GET", "POST"])
@may("consumer.create")
def consumer_create(request: HttpRequest, profile: Profile, name: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    if "job" in request.GET:
        return _create_outcome(request, profile, stream,
                               addressed_job(profile, JobKind.CONSUMER_CREATE, request,
                                             target=name))
    if refusal := _refusal(stream):
        raise PermissionDenied(refusal)
    form = ConsumerForm(request.POST or None, profile=profile, stream=stream.config)
    if sent(request, form):
        job = Job.objects.submit(
            JobKind.CONSUMER_CREATE, profile, audit.Context.from_request(request),
            target=name, params={"consumer": form.config["durable_name"],
                                 "config": form.config}).wait()
        return _create_outcome(request, profile, stream, job)
    return _render(request, form, _context(profile, stream, form=form))


def _create_outcome(request: HttpRequest, profile: Profile, stream: Stream,
                    job: Job) -> HttpResponse:
    """The form region of a create job: the answers (disabled while it runs), then the outcome
    or the answers again with the broker's error on its field."""
    form = with_broker_error(job, ConsumerForm(
        consumer_config.to_initial(job.params["config"]), profile=profile,
        stream=stream.config))
    return _render(request, form, _context(profile, stream, form=form, **job_context(job)))


@require_http_methods(["GET", "POST"])
@may("consumer.edit")
def consumer_edit(request: HttpRequest, profile: Profile, name: str, consumer: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    if "job" in request.GET:
        return _edit_outcome(request, profile, stream, consumer,
                             addressed_job(profile, JobKind.CONSUMER_UPDATE, request,
                                           target=name, params__consumer=consumer))
    row = consumer_or_gone(profile, name, consumer)
    if refusal := _refusal(stream, row):
        raise PermissionDenied(refusal)
    form = ConsumerForm(request.POST or None, profile=profile, stream=stream.config,
                        current=row.config)
    context = _context(profile, stream, form=form, consumer=row)
    if sent(request, form) and confirmed(request, form, context, "consumer", _diff_rows):
        job = Job.objects.submit(
            JobKind.CONSUMER_UPDATE, profile, audit.Context.from_request(request),
            target=name, params={"consumer": consumer, "changes": form.changes}).wait()
        return _edit_outcome(request, profile, stream, consumer, job)
    return _render(request, form, context)


def _edit_outcome(request: HttpRequest, profile: Profile, stream: Stream, name: str,
                  job: Job) -> HttpResponse:
    """The form region of an edit job: the user's changes over the consumer as it is now (so a
    second send changes those fields only), with the outcome and what changed, or the broker's
    error on its field."""
    row = Consumer.objects.filter(profile=profile, stream_name=stream.name, name=name).first()
    context = _context(profile, stream, consumer=row, **job_context(job))
    if row is None or not row.config:  # gone meanwhile: the card says why
        return render(request, page_or_partial(request, FORM_TEMPLATE, "form_region"), context)
    current = row.config
    answers = consumer_config.to_initial(consumer_config.apply(current, job.params["changes"]))
    form = with_broker_error(job, ConsumerForm(
        {**answers, "loaded": ConsumerForm.sign(current)}, profile=profile,
        stream=stream.config, current=current))
    if job.status == JobStatus.SUCCEEDED:
        context["diff"] = _diff_rows(job.params["changes"])
    return _render(request, form, {**context, "form": form})


def _diff_rows(changes: dict[str, list[Any]]) -> list[tuple[str, str, str]]:
    return [(consumer_config.label_of_key(key), consumer_config.format_value(key, old),
             consumer_config.format_value(key, new)) for key, (old, new) in changes.items()]


@require_http_methods(["GET", "POST"])
@may("consumer.delete")
def consumer_delete(request: HttpRequest, profile: Profile, name: str,
                    consumer: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    if "job" in request.GET:  # its card ended: the outcome, the consumer's row likely gone
        job = addressed_job(profile, JobKind.CONSUMER_DELETE, request, target=name,
                            params__consumer=consumer)
        return render(request, page_or_partial(request, "streams/consumer_delete.html",
                                               "delete_region"),
                      _context(profile, stream, consumer=Consumer(name=consumer), job=job))
    row = consumer_or_gone(profile, name, consumer)
    form = DeleteConsumerForm(request.POST or None, consumer_name=consumer, info=row.info)
    context = _context(profile, stream, consumer=row, form=form, refusal=_refusal(stream))
    if request.method == "POST" and not context["refusal"] and form.is_valid():
        context["job"] = Job.objects.submit(
            JobKind.CONSUMER_DELETE, profile, audit.Context.from_request(request), target=name,
            params={"consumer": consumer, **form.seen_params}).wait()
    return render(request, page_or_partial(request, "streams/consumer_delete.html",
                                           "delete_region"), context)


def _pause_refusal(profile: Profile, stream: Stream, consumer: Consumer) -> str:
    return _refusal(stream, consumer) or consumer_config.pause_refusal(
        stream_config.parse_version(profile.last_server_version))


@require_http_methods(["GET", "POST"])
@may("consumer.pause")
def consumer_pause(request: HttpRequest, profile: Profile, name: str,
                   consumer: str) -> HttpResponse:
    """`nats consumer pause`: no deliveries until a time (2.11+)."""
    stream = stream_or_gone(profile, name)
    row = consumer_or_gone(profile, name, consumer)
    form = PauseConsumerForm(request.POST or None)
    context = _context(profile, stream, consumer=row, form=form,
                       refusal=_pause_refusal(profile, stream, row))
    if request.method == "POST" and not context["refusal"] and form.is_valid():
        until = consumer_config.api_time(form.cleaned_data["pause_until"])
        context["job"] = Job.objects.submit(
            JobKind.CONSUMER_PAUSE, profile, audit.Context.from_request(request), target=name,
            params={"consumer": consumer, "pause_until": until}).wait()
    return render(request, page_or_partial(request, "streams/consumer_pause.html",
                                           "pause_region"), context)


@require_POST
@may("consumer.pause")
def consumer_resume(request: HtmxHttpRequest, profile: Profile, name: str,
                    consumer: str) -> HttpResponse:
    """`nats consumer resume`: deliver again now."""
    stream = stream_or_gone(profile, name)
    row = consumer_or_gone(profile, name, consumer)
    context = _context(profile, stream, consumer=row, form=PauseConsumerForm(),
                       refusal=_pause_refusal(profile, stream, row))
    if not context["refusal"]:
        context["job"] = Job.objects.submit(
            JobKind.CONSUMER_RESUME, profile, audit.Context.from_request(request), target=name,
            params={"consumer": consumer}).wait()
    return render(request, page_or_partial(request, "streams/consumer_pause.html",
                                           "pause_region"), context)
