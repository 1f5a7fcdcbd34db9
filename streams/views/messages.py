"""A stream's messages: browse them by sequence, time and subject (jobs that read with the
message get API, never through a consumer), one on its own page, download, delete or publish
one."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from streams import audit, cli_values, payloads, policy
from streams.forms.messages import BrowseForm, MessageForm, PublishForm
from streams.models import Job, JobKind, JobStatus, Profile, Stream, StreamStatus
from streams.views.http import (
    HtmxHttpRequest,
    addressed_job,
    follow_address,
    job_card,
    may,
    page_or_partial,
    refused,
    stream_or_gone,
)

PAGE = 50  # messages a page


@may("view")
def message_list(request: HttpRequest, profile: Profile, name: str) -> HttpResponse:
    """The page: the browse form as the address asks, its results loaded by the form."""
    stream = stream_or_gone(profile, name)
    state = (stream.info or {}).get("state") or {}
    return render(request, "streams/messages.html", {
        "profile": profile, "stream": stream, "form": BrowseForm(request.GET or None),
        # Each a button browsing that subject from its start.
        "subjects": [(subject, count, json.dumps({"subject": subject, "seq": ""}))
                     for subject, count in sorted((state.get("subjects") or {}).items(),
                                                  key=lambda item: -item[1])],
        "subjects_truncated": state.get("subjects_truncated", False),
    })


@require_POST
@may("view")
def message_browse(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    form = BrowseForm(request.POST)
    if not form.is_valid():
        return render(request, "streams/messages.html#results", {
            "profile": profile, "stream": stream, "form": form})
    job = Job.objects.submit(JobKind.MESSAGE_LIST, profile, audit.Context.from_request(request),
                             target=name, params={**form.params, "count": PAGE}).wait()
    response = _results(request, profile, stream, job)
    # The address bar gets what was asked, so a reload or a shared link shows this page.
    query = urlencode({key: value for key, value in request.POST.items()
                       if key in form.fields and value})
    return follow_address(request, response, reverse("message_list", args=[profile.pk, name]),
                          query)


@may("view")
def message_results(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    """A browse job's page of messages, or, while it runs, the region polling for it. Only for
    the user who browsed: anyone else gets what a missing job gets."""
    job = addressed_job(profile, JobKind.MESSAGE_LIST, request, target=name, actor=request.user)
    return _results(request, profile, stream_or_gone(profile, name), job)


def _results(request: HttpRequest, profile: Profile, stream: Stream, job: Job) -> HttpResponse:
    context: dict[str, Any] = {"profile": profile, "stream": stream, "job": job}
    result = job.result if job.status == JobStatus.SUCCEEDED else None
    if result and "messages" not in result:  # forgotten (Job.objects.forget_expired_messages)
        context["expired"] = True
    elif result:
        messages = [{**message, "shown": payloads.line(message["data"], message["size"])}
                    for message in result["messages"]]
        first, last = result["first_seq"], result["last_seq"]
        subject = job.params.get("subject", "")
        start = messages[0]["seq"] if messages else result["start"]
        until = messages[-1]["seq"] if messages else start
        pages = {"first": first if start > first else None,
                 "previous": max(first, start - PAGE) if start > first else None,
                 "next": until + 1 if messages and until < last else None,
                 "last": max(first, last - PAGE + 1) if until < last else None}
        context.update(messages=messages, first_seq=first, last_seq=last, subject=subject,
                       until_seq=until,
                       pages=[(label, json.dumps({"seq": str(seq)}))
                              for label, seq in pages.items() if seq is not None],
                       can_delete=policy.may(request.user, "message.delete", profile)
                       and not stream.config.get("deny_delete")
                       and not stream.config.get("sealed"))
    return render(request, "streams/messages.html#results", context)


@require_http_methods(["GET", "POST"])
@may("view")
def message_detail(request: HtmxHttpRequest, profile: Profile, name: str, seq: int) -> HttpResponse:
    """One message, as `nats stream get` shows it. The page (GET) loads its region by POST,
    which reads the message in a job; the region polls that job with `?job=` while it runs.
    The message read is its reader's alone and forgotten like a browse's."""
    stream = stream_or_gone(profile, name)
    if not 1 <= seq <= cli_values.UINT64_MAX:
        raise Http404("no such sequence")
    context: dict[str, Any] = {"profile": profile, "stream": stream, "seq": seq}
    if request.method == "POST":
        job = Job.objects.submit(JobKind.MESSAGE_READ, profile,
                                 audit.Context.from_request(request), target=name,
                                 params={"seq": seq}).wait()
    elif request.htmx and not request.htmx.history_restore_request and "job" in request.GET:
        job = addressed_job(profile, JobKind.MESSAGE_READ, request, target=name,
                            actor=request.user, params__seq=seq)
    else:
        return render(request, "streams/message_detail.html", context)
    context["job"] = job
    if job.status == JobStatus.SUCCEEDED:
        if message := job.result.get("message"):
            context.update(message=message, hex_bytes=payloads.HEX_BYTES,
                           shown=payloads.show(message["data"], job.result["size"]))
        else:  # forgotten (forget_expired_messages), or deleted through the dashboard since
            context["expired"] = True
    return render(request, "streams/message_detail.html#message", context)


def _changeable(stream: Stream) -> None:
    if stream.system_kind or stream.status == StreamStatus.GONE or not stream.config:
        raise PermissionDenied("This stream's messages cannot be changed here.")


@require_POST
@may("message.delete")
def message_delete(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    _changeable(stream_or_gone(profile, name))
    form = MessageForm(request.POST)
    if not form.is_valid():
        return refused(request, f"Not deleted: {form.errors['seq'][0]}")
    job = Job.objects.submit(JobKind.MESSAGE_DELETE, profile,
                             audit.Context.from_request(request), target=name,
                             params={"seq": form.cleaned_data["seq"], **form.seen_params}).wait()
    return job_card(request, job)


@require_POST
@may("view")
def message_download(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    """A whole message as a file, read by a job; the job's row does not keep it afterwards. A
    job that fails or is slow shows on its own page, which offers the file once it is read
    (`?job=`) to the user who asked for it."""
    stream_or_gone(profile, name)
    if "job" in request.GET:
        job = addressed_job(profile, JobKind.MESSAGE_GET, request, target=name,
                            status=JobStatus.SUCCEEDED, actor=request.user)
    else:
        form = MessageForm(request.POST)
        if not form.is_valid():
            return refused(request, f"Not downloaded: {form.errors['seq'][0]}")
        job = Job.objects.submit(JobKind.MESSAGE_GET, profile,
                                 audit.Context.from_request(request), target=name,
                                 params={"seq": form.cleaned_data["seq"]}).wait()
        if job.status != JobStatus.SUCCEEDED:
            return redirect("job_detail", pk=job.pk)
    if "data" not in job.result:
        return refused(request, "Downloaded already, not taken in time, or deleted since: the "
                       "dashboard keeps a message only until then. Download it again from the "
                       "stream's messages.", status=410)
    data = base64.b64decode(job.result["data"])
    job.forget_messages()
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = (f'attachment; filename="{_safe(name)}-'
                                       f'{job.result["seq"]}.bin"')
    return response


def _safe(name: str) -> str:
    """A stream name as a file name: no quotes, slashes or control characters."""
    return "".join(char if char.isascii() and (char.isalnum() or char in "-_.") else "_"
                   for char in name)


@require_http_methods(["GET", "POST"])
@may("message.publish")
def message_publish(request: HtmxHttpRequest, profile: Profile, name: str) -> HttpResponse:
    stream = stream_or_gone(profile, name)
    _changeable(stream)
    form = PublishForm(request.POST or None, stream=name, subjects=stream.subjects)
    context: dict[str, Any] = {"profile": profile, "stream": stream, "form": form}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["payload"].encode()
        subject, headers = form.cleaned_data["subject"], form.cleaned_data["headers"]
        context["job"] = Job.objects.submit(
            JobKind.MESSAGE_PUBLISH, profile, audit.Context.from_request(request), target=name,
            params={"subject": subject, "headers": headers, "size": len(data),
                    "data": base64.b64encode(data).decode()},
            audited={"subject": subject, "size": len(data)}).wait()
    template = "streams/message_publish.html"
    return render(request, page_or_partial(request, template, "publish_region"), context)
