"""The consumer forms: the `nats consumer add` questions (create and edit), delete, pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms

from streams import cli_values, consumer_config, naming, stream_config
from streams.consumer_config import LABELS
from streams.forms.fields import CliValueField, EditsLiveConfig, Questions
from streams.forms.streams import DeleteStreamForm
from streams.models import Profile

_ask = Questions(LABELS, required=False)


def _optional_duration(name: str, **kwargs: Any) -> CliValueField:
    return _ask.duration(name, consumer_config.format_optional_duration, **kwargs)


def _count(name: str, **kwargs: Any) -> CliValueField:
    return _ask.cli(name, consumer_config.parse_count, str, **kwargs)


class ConsumerForm(EditsLiveConfig):
    """The `nats consumer add` questions in its order and wording, then its flags. Create a
    durable consumer when `current` is None; edit otherwise (EditsLiveConfig, like the stream
    form): pre-filled from the server's config, the fields the server will not change
    read-only with the reason."""

    translator = consumer_config
    loaded_salt = "streams.ConsumerForm.loaded"

    durable_name = forms.CharField(label=LABELS["durable_name"], max_length=255, strip=True)
    deliver_subject = _ask.text("deliver_subject")
    deliver_group = _ask.text("deliver_group", help_text="Push consumers only.")
    start_policy = _ask.cli("start_policy", consumer_config.parse_start_policy,
                            consumer_config.format_start_policy, required=True,
                            help_text="A stream sequence starts there; a duration (1h) starts "
                                      "that far back; a time is UTC.")
    ack_policy = _ask.choice("ack_policy", consumer_config.ACK_CHOICES,
                             help_text="The CLI suggests none for push consumers.")
    replay_policy = _ask.choice("replay_policy", consumer_config.REPLAY_CHOICES)
    filter_subjects = _ask.cli("filter_subjects", naming.parse_subjects, ", ".join,
                               max_chars=100_000,
                               help_text="Comma or space separated, wildcards * and > allowed.")
    max_deliver = _ask.limit("max_deliver", required=True)
    max_ack_pending = _ask.limit("max_ack_pending", required=True,
                                 help_text="0: the server's default; -1: unlimited.")
    idle_heartbeat = _ask.duration("idle_heartbeat", required=True,
                                   help_text="Push consumers only; 0s or -1 for none.")
    flow_control = _ask.yes_no("flow_control")
    headers_only = _ask.yes_no("headers_only")
    backoff = _ask.cli("backoff", consumer_config.parse_backoff, consumer_config.format_backoff,
                       help_text="Delays before each redelivery, like 1m, 5m, 10m; empty for "
                                 "none (the ack wait).")

    description = forms.CharField(label=LABELS["description"], required=False,
                                  max_length=consumer_config.MAX_DESCRIPTION)
    ack_wait = _optional_duration("ack_wait", help_text="Empty: the server's 30s.")
    max_waiting = _count("max_waiting", help_text="Pull consumers only; empty: 512.")
    max_batch = _count("max_batch")
    max_expires = _optional_duration("max_expires")
    max_bytes = _ask.cli("max_bytes", consumer_config.parse_optional_size,
                         cli_values.format_size)
    inactive_threshold = _optional_duration("inactive_threshold",
                                            help_text="How long the consumer may stay unused "
                                                      "before the server removes it; empty: "
                                                      "never.")
    sample_freq = forms.IntegerField(label=LABELS["sample_freq"], min_value=0, max_value=100,
                                     required=False)
    rate_limit_bps = _count("rate_limit_bps", help_text="Push consumers only.")
    num_replicas = forms.IntegerField(label=LABELS["num_replicas"], min_value=0, max_value=5,
                                      help_text="0: as many as the stream.")
    mem_storage = _ask.check("mem_storage")
    metadata = _ask.cli("metadata", stream_config.parse_metadata, stream_config.format_metadata,
                        widget=forms.Textarea(attrs={"rows": 2}),
                        help_text="key=value, one per line.")
    pause_until = _ask.cli("pause_until", consumer_config.parse_when,
                           consumer_config.format_time,
                           help_text="A duration (1h30m) or a time (2026-01-02 15:04:05, UTC).")
    priority_policy = _ask.choice("priority_policy", consumer_config.PRIORITY_CHOICES)
    priority_groups = _ask.cli("priority_groups", consumer_config.parse_groups, ", ".join)
    priority_timeout = _optional_duration("priority_timeout")

    # Typed names where something invisible would mislead (subjects have their own checks).
    TEXT_OPTIONS = ("durable_name", "description", "deliver_group", "priority_groups")

    def __init__(self, data: Any = None, *, profile: Profile, stream: dict[str, Any],
                 current: dict[str, Any] | None = None, **kwargs: Any) -> None:
        initial = consumer_config.to_initial(current) if current else consumer_config.DEFAULTS
        super().__init__(data, initial=initial, **kwargs)
        self.profile = profile
        self.stream = stream
        self.current = current
        self.version = stream_config.parse_version(profile.last_server_version)
        for name in list(self.fields):
            if not consumer_config.supported(name, self.version):
                del self.fields[name]
        if "priority_policy" in self.fields:
            self.fields["priority_policy"].choices = consumer_config.priority_choices(
                self.version)
        if current is not None:
            self.edit(current, self.version)
        self.config: dict[str, Any] = {}
        self.changes: dict[str, list[Any]] = {}

    def clean_pause_until(self) -> datetime | None:
        until = self.cleaned_data["pause_until"]
        if until is not None and self.current is None and until <= datetime.now(UTC):
            raise forms.ValidationError("A time in the future.")
        return until

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        values = self.answers(data)
        if values is None:
            return data
        self.config = consumer_config.to_config(values)
        if self.current is None:
            errors = consumer_config.rule_errors(self.config, stream=self.stream,
                                                 version=self.version)
        elif not self.loaded_changes(data, self.config):
            return data
        else:
            errors = consumer_config.rule_errors(
                consumer_config.apply(self.current, self.changes), stream=self.stream,
                version=self.version, current=self.current)
        self.add_rule_errors(errors)
        return data


class DeleteConsumerForm(DeleteStreamForm):
    def __init__(self, *args: Any, consumer_name: str, **kwargs: Any) -> None:
        super().__init__(*args, stream_name=consumer_name, **kwargs)
        self.fields["confirm_name"].label = "Type the consumer name to confirm"


class PauseConsumerForm(forms.Form):
    """`nats consumer pause`: until a time, or for a while (the CLI's default: an hour)."""

    pause_until = CliValueField(consumer_config.parse_when, consumer_config.format_time,
                                label=LABELS["pause_until"], max_chars=64,
                                help_text="A duration (1h30m) or a time (2026-01-02 15:04:05, "
                                          "UTC).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pause_until"].initial = consumer_config.format_time(
            datetime.now(UTC) + timedelta(hours=1))

    def clean_pause_until(self) -> datetime:
        until = self.cleaned_data["pause_until"]
        if until is None or until <= datetime.now(UTC):
            raise forms.ValidationError("A time in the future.")
        return until
