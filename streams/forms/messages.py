"""The message forms: where to browse from, one message to publish, one by its sequence."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from streams import cli_values, naming, payloads
from streams.forms.fields import CliValueField

MAX_HEADERS = 8 * 1024
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII but ':' (RFC 7230 token, loosely)


def parse_seq(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,20}", text.strip()):  # ASCII digits: isdigit() takes ②
        raise cli_values.ParseError("A sequence number: digits only.")
    seq = int(text)
    if not 1 <= seq <= cli_values.UINT64_MAX:
        raise cli_values.ParseError(f"From 1 to {cli_values.UINT64_MAX}.")
    return seq


def _seq_field(label: str, **kwargs: Any) -> CliValueField:
    return CliValueField(parse_seq, str, label=label, max_chars=20, **kwargs)


def _subject_error(subject: str, *, wildcards: bool) -> str:
    if not wildcards and any(token in {"*", ">"} for token in subject.split(".")):
        return "A message is published to one subject: no wildcards."
    return naming.subject_error(subject)


class BrowseForm(forms.Form):
    seq = _seq_field("From sequence", required=False)
    subject = forms.CharField(label="Subject", required=False,
                              max_length=naming.MAX_SUBJECT_BYTES,
                              help_text="wildcards allowed")
    at = forms.DateTimeField(label="From time (UTC)", required=False,
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"].strip()
        if subject and (error := _subject_error(subject, wildcards=True)):
            raise forms.ValidationError(error)
        return subject

    def clean_at(self) -> datetime | None:
        at = self.cleaned_data["at"]
        if at is not None and timezone.is_naive(at):
            at = timezone.make_aware(at, timezone.UTC)
        return at

    @property
    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"start": data.get("seq") or 1, "subject": data.get("subject", ""),
                "at": data["at"].isoformat() if data.get("at") else ""}


class PublishForm(forms.Form):
    subject = forms.CharField(label="Subject", max_length=naming.MAX_SUBJECT_BYTES)
    headers = forms.CharField(label="Headers", required=False, max_length=MAX_HEADERS,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text="one per line: Name: value")
    # Limited in bytes, by clean(). A browser sends at most maxlength characters (UTF-16
    # units), so its post stays within settings.DATA_UPLOAD_MAX_MEMORY_SIZE and gets an answer.
    payload = forms.CharField(label="Payload", required=False, strip=False,
                              widget=forms.Textarea(attrs={"rows": 6,
                                                           "maxlength": payloads.MAX_PAYLOAD}))

    def __init__(self, *args: Any, stream: str, subjects: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream, self.subjects = stream, subjects

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"].strip()
        if error := _subject_error(subject, wildcards=False):
            raise forms.ValidationError(error)
        if self.subjects and not any(_matches(pattern, subject) for pattern in self.subjects):
            raise forms.ValidationError(
                f"Not a subject of this stream ({', '.join(self.subjects)}).")
        return subject

    def clean_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["headers"].splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if not sep or not _HEADER_NAME.fullmatch(name):
                raise forms.ValidationError(f"Line {number}: write it as Name: value.")
            if any(ord(char) < 32 or ord(char) == 127 for char in value):
                raise forms.ValidationError(f"Line {number}: control characters are not "
                                            "allowed in a header value.")
            if name.lower().startswith("nats-"):
                raise forms.ValidationError(f"Line {number}: Nats- headers are the server's.")
            headers[name] = value
        return headers

    def clean_payload(self) -> str:
        payload = self.cleaned_data["payload"]
        if "\x00" in payload:
            raise forms.ValidationError("Null characters are not allowed.")
        return payload

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "payload" in data:  # its size as the server counts it: UTF-8 bytes, headers included
            size = payloads.size(data["payload"].encode(), payloads.published_headers(
                self.stream, data.get("headers", {})))
            if size > payloads.MAX_PAYLOAD:
                self.add_error("payload", f"The message is {size:,} bytes with its headers: the "
                               f"dashboard publishes at most {payloads.MAX_PAYLOAD:,} "
                               "(nats-server's default max_payload).")
        return data


def _matches(pattern: str, subject: str) -> bool:
    """Whether a stream subject (wildcards allowed) takes this literal subject."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in {"*", tokens[index]}:
            return False
    return len(tokens) == len(wanted)


class MessageForm(forms.Form):
    """One message, by its sequence (to delete or download it), and when the page showed it
    stored: the same sequence in a stream made again since is another message."""

    seq = _seq_field("Sequence")
    time = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    @property
    def seen_params(self) -> dict[str, Any]:
        time = self.cleaned_data.get("time")
        return {"seen": {"time": time}} if time else {}
