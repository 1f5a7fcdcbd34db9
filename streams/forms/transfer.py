"""Stream configs from elsewhere (imported files, another profile, an audited version) checked
for a profile before anything is proposed: the JSON's types, the options its server's version
knows, then the create form's own rules. Validation only, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import QuerySet

from streams import definitions, stream_json
from streams.forms.streams import StreamForm
from streams.models import Profile
from streams.naming import utf8_size
from streams.stream_config import (
    LABELS,
    label_of_key,
    parse_version,
    rule_errors,
    to_initial,
)

Config = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """A config that cannot be proposed, and why, field by field (label, message)."""

    where: str
    name: str
    errors: list[tuple[str, str]]


def check(config: Any, profile: Profile) -> tuple[Config, list[tuple[str, str]]]:
    """(the config as it will be proposed, what is wrong with it for this profile)."""
    config = stream_json.unwrapped(config)
    if errors := stream_json.type_errors(config):
        return {}, [(label_of_key(key) if key else "", message)
                    for key, messages in errors.items() for message in messages]
    version = parse_version(profile.last_server_version)
    runs = profile.last_server_version or "a version not yet known (test its connection)"
    proposed, problems = {}, []
    for key, value in stream_json.portable(config).items():
        needs = stream_json.since(key)
        if value is None or (version < needs and definitions.normalise(key, value) is None):
            continue  # left at its default, it means the same to an older server
        if version < needs:
            problems.append((label_of_key(key), f"Needs nats-server "
                             f"{'.'.join(map(str, needs))}; {profile.name} runs {runs}."))
        proposed[key] = value
    if proposed.get("sealed"):  # the create form does not offer it
        problems.append((LABELS["sealed"], "A stream cannot be created sealed."))
    form = StreamForm(to_initial(proposed), profile=profile)
    if not form.is_valid():
        problems += [(LABELS.get(field, ""), message)
                     for field, messages in form.errors.items() for message in messages]
    # The form reads values as typed text (subjects joined, then split and stripped), which
    # hides what the server refuses in the JSON itself, " a" or "" as a subject: its rules
    # judge the config as proposed too, on the fields the form found nothing wrong with.
    refused = {field for field, _message in problems}
    problems += [(LABELS.get(field, ""), message)
                 for field, messages in rule_errors(proposed, memphis=form.memphis).items()
                 if LABELS.get(field, "") not in refused for message in messages]
    return proposed, problems


def check_all(configs: list[tuple[str, Any]], profile: Profile
              ) -> tuple[dict[str, Config], list[Problem]]:
    """The configs by stream name, and the problems of those that cannot be proposed."""
    desired: dict[str, Config] = {}
    where_of: dict[str, str] = {}
    problems = []
    for where, config in configs:
        proposed, errors = check(config, profile)
        name = proposed.get("name", "")
        if name and name in where_of:
            errors.append((LABELS["name"], f"Also in {where_of[name]}: one config per stream."))
        if errors:
            problems.append(Problem(where, name, errors))
        else:
            desired[name] = proposed
        where_of.setdefault(name, where)
    return desired, problems


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        one = super().clean
        return [one(item, initial) for item in data] if isinstance(data, list | tuple) \
            else [item for item in [one(data, initial)] if item]


class ImportForm(forms.Form):
    files = MultipleFileField(
        label="JSON files", required=False,
        help_text="Files `nats stream add --config` reads (one stream each), a JSON list of "
                  "them, or a .zip of them as exported here.")
    text = forms.CharField(label="Or paste JSON", required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": 8}))

    def __init__(self, *args: Any, profile: Profile, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile = profile
        self.desired: dict[str, Config] = {}
        self.problems: list[Problem] = []

    def clean_files(self) -> list[tuple[str, Any]]:
        uploads = self.cleaned_data["files"]
        if sum(upload.size for upload in uploads) > stream_json.MAX_BYTES:
            raise forms.ValidationError(_too_large())
        configs, errors = [], []
        for upload in uploads:
            try:
                configs += stream_json.read(upload.name, upload.read(stream_json.MAX_BYTES + 1))
            except stream_json.FileError as exc:
                errors.append(str(exc))
        if errors:
            raise forms.ValidationError(errors)
        return configs

    def clean_text(self) -> list[tuple[str, Any]]:
        text = self.cleaned_data["text"]
        if not text.strip():
            return []
        if utf8_size(text) > stream_json.MAX_BYTES:
            raise forms.ValidationError(_too_large())
        try:
            return stream_json.parse("pasted JSON", text)
        except stream_json.FileError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        configs = data["files"] + data["text"]
        if not configs:
            raise forms.ValidationError("Choose a file or paste JSON.")
        if len(configs) > stream_json.MAX_STREAMS:
            raise forms.ValidationError(f"{len(configs):,} streams: at most "
                                        f"{stream_json.MAX_STREAMS:,} at once.")
        self.desired, self.problems = check_all(configs, self.profile)
        if self.problems:
            raise forms.ValidationError(_nothing_proposed(self.problems, len(configs)))
        return data


class CopyForm(forms.Form):
    """Definitions of one profile proposed to another (staging → production)."""

    target = forms.ModelChoiceField(label="Copy to", queryset=Profile.objects.none())
    name = forms.MultipleChoiceField(
        label="Streams", widget=forms.MultipleHiddenInput,
        error_messages={"required": "No stream to copy: tick streams that have a definition."})

    def __init__(self, *args: Any, source: Profile, targets: QuerySet[Profile],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        self.definitions = dict(source.stream_definitions.order_by("name")
                                .values_list("name", "config"))
        self.fields["target"].queryset = targets.exclude(pk=source.pk)
        self.fields["name"].choices = [(name, name) for name in self.definitions]
        self.desired: dict[str, Config] = {}
        self.problems: list[Problem] = []

    @property
    def names(self) -> list[str]:
        """The streams to copy: as sent, else the ticked ones that have a definition, else
        (none ticked) every one."""
        if self.is_bound:
            return self.cleaned_data.get("name") or []
        ticked = self.initial.get("name")
        return [name for name in ticked if name in self.definitions] if ticked \
            else list(self.definitions)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        configs = [(name, self.definitions[name]) for name in self.names]
        self.desired, self.problems = check_all(configs, data["target"])
        if self.problems:
            raise forms.ValidationError(_nothing_proposed(self.problems, len(configs)))
        return data


def _too_large() -> str:
    return f"At most {stream_json.MAX_BYTES // 1024:,} KiB in all."


def _nothing_proposed(problems: list[Problem], total: int) -> str:
    return (f"{len(problems)} of {total} stream configs cannot be used as they are: nothing "
            "was proposed. Correct them (below) and try again.")
