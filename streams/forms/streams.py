"""The stream forms: the `nats stream add` questions (create and edit), purge, delete."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from streams import cli_values, naming, stream_config
from streams.forms.fields import ActsOnWhatItSaw, EditsLiveConfig, Questions
from streams.models import BrokerKind, Profile

LABELS = stream_config.LABELS
_ask = Questions(LABELS)


def _parse_lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,]+", text) if line.strip()]


class StreamForm(EditsLiveConfig):
    """The `nats stream add` questions with its wording and defaults. Create when `current` is
    None; edit otherwise (EditsLiveConfig: only what the user changed is written, a field
    changed by someone else since is a conflict): pre-filled from the server's config,
    unchangeable fields read-only."""

    translator = stream_config
    loaded_salt = "streams.StreamForm.loaded"

    name = forms.CharField(label=LABELS["name"], max_length=255, strip=True)
    subjects = _ask.cli("subjects", naming.parse_subjects, ", ".join, required=False,
                        max_chars=100_000,
                        help_text="Comma or space separated, wildcards * and > allowed. "
                                  "Empty: the stream name.")
    storage = _ask.choice("storage", stream_config.STORAGE_CHOICES)
    num_replicas = forms.IntegerField(label=LABELS["num_replicas"], min_value=1, max_value=5,
                                      widget=forms.NumberInput(attrs={"list": "replica-counts"}))
    retention = _ask.choice("retention", stream_config.RETENTION_CHOICES)
    discard = _ask.choice("discard", stream_config.DISCARD_CHOICES)
    max_msgs = _ask.limit("max_msgs")
    max_msgs_per_subject = _ask.limit("max_msgs_per_subject")
    max_bytes = _ask.size("max_bytes", help_text="Bytes or 512MiB, 1GB; -1 for unlimited.")
    max_age = _ask.duration("max_age", cli_values.format_limit_duration,
                            help_text="Like 1h30m, 7d, 500ms; -1 for unlimited.")
    max_msg_size = _ask.size("max_msg_size")
    duplicate_window = _ask.duration("duplicate_window")
    allow_rollup_hdrs = _ask.yes_no("allow_rollup_hdrs")
    allow_delete = _ask.yes_no("allow_delete")
    allow_purge = _ask.yes_no("allow_purge")

    description = forms.CharField(label=LABELS["description"], required=False, max_length=4096)
    max_consumers = _ask.limit("max_consumers", required=False)
    discard_new_per_subject = _ask.check("discard_new_per_subject")
    allow_direct = _ask.check("allow_direct")
    mirror_direct = _ask.check("mirror_direct")
    compression = _ask.choice("compression", stream_config.COMPRESSION_CHOICES, required=False)
    first_seq = forms.IntegerField(label=LABELS["first_seq"], min_value=0,
                                   max_value=cli_values.UINT64_MAX, required=False)
    subject_transform_src = _ask.text("subject_transform_src")
    subject_transform_dest = _ask.text("subject_transform_dest")
    republish_src = _ask.text("republish_src")
    republish_dest = _ask.text("republish_dest")
    republish_headers_only = _ask.check("republish_headers_only")
    placement_cluster = _ask.text("placement_cluster")
    placement_tags = _ask.cli("placement_tags", _parse_lines, ", ".join, required=False)
    mirror = _ask.text("mirror", help_text="Name of the stream to mirror.")
    sources = _ask.cli("sources", _parse_lines, "\n".join, required=False,
                       widget=forms.Textarea(attrs={"rows": 2}),
                       help_text="Stream names, one per line.")
    metadata = _ask.cli("metadata", stream_config.parse_metadata, stream_config.format_metadata,
                        required=False, widget=forms.Textarea(attrs={"rows": 2}),
                        help_text="key=value, one per line.")
    no_ack = _ask.check("no_ack")
    allow_msg_ttl = _ask.check("allow_msg_ttl")
    subject_delete_marker_ttl = _ask.duration("subject_delete_marker_ttl", required=False)
    sealed = _ask.check("sealed")

    # Text and names typed in the advanced options: what is invisible there would mislead (the
    # name and the subjects have their own, stricter checks).
    TEXT_OPTIONS = ("description", "subject_transform_src", "subject_transform_dest",
                    "republish_src", "republish_dest", "placement_cluster", "placement_tags",
                    "mirror", "sources")

    def __init__(self, data: Any = None, *, profile: Profile,
                 current: dict[str, Any] | None = None, **kwargs: Any) -> None:
        initial = stream_config.to_initial(current) if current else stream_config.DEFAULTS
        super().__init__(data, initial=initial, **kwargs)
        self.profile = profile
        self.current = current
        self.version = stream_config.parse_version(profile.last_server_version)
        self.memphis = profile.broker_kind == BrokerKind.MEMPHIS
        for name in list(self.fields):
            if not stream_config.supported(name, self.version):
                del self.fields[name]
        if current is None:
            del self.fields["sealed"]
        else:
            self.edit(current, self.version)
        self.config: dict[str, Any] = {}
        self.changes: dict[str, list[Any]] = {}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        values = self.answers(data)
        if values is None:
            return data
        if "max_consumers" in values and values["max_consumers"] is None:
            values["max_consumers"] = -1  # left empty: unlimited, as the server's default
        if values.get("compression") == "":
            values["compression"] = "none"
        self.config = stream_config.to_config(values)  # what the user asked for
        if self.current is None:
            errors = stream_config.rule_errors(self.config, memphis=self.memphis)
        elif not self.loaded_changes(data, self.config):
            return data
        else:
            # The rules apply to what the stream will be: the live config with these changes.
            errors = stream_config.rule_errors(
                stream_config.apply(self.current, self.changes), memphis=self.memphis,
                current=self.current)
        self.add_rule_errors(errors)
        return data



PURGE_MODES = [
    ("all", "The entire stream"),
    ("subject", "One subject (wildcards allowed)"),
    ("keep", "Keep only the last N messages"),
    ("seq", "Everything below a sequence"),
]


class PurgeForm(ActsOnWhatItSaw):
    mode = forms.ChoiceField(label="Purge", choices=PURGE_MODES, initial="all",
                             widget=forms.RadioSelect)
    subject = forms.CharField(label="Subject", required=False)
    keep = forms.IntegerField(label="Keep the last", min_value=1,
                              max_value=cli_values.UINT64_MAX, required=False)
    seq = forms.IntegerField(label="Up to (not including) sequence", min_value=1,
                             max_value=cli_values.UINT64_MAX, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        mode = data.get("mode")
        if mode == "subject":
            subject = data.get("subject", "")
            error = naming.subject_error(subject) if subject else "Give a subject."
            if error:
                self.add_error("subject", error)
        for name in ("keep", "seq"):
            if mode == name and not data.get(name):
                self.add_error(name, "Required for this kind of purge.")
        return data

    @property
    def params(self) -> dict[str, Any]:
        mode = self.cleaned_data["mode"]
        return {} if mode == "all" else {mode: self.cleaned_data[mode]}


class DeleteStreamForm(ActsOnWhatItSaw):
    confirm_name = forms.CharField(label="Type the stream name to confirm")

    def __init__(self, *args: Any, stream_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream_name = stream_name

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"]
        if typed != self.stream_name:
            raise forms.ValidationError(f"Type {self.stream_name} exactly.")
        return typed
