"""What the stream and consumer forms share: values typed the way the nats CLI takes them, the
fields that ask a translator's questions under its labels (Questions), and editing a live
config against the one the form was filled from."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from django import forms
from django.core import signing

from streams import cli_values, naming, stream_config

YES_NO = [("yes", "Yes"), ("no", "No")]


class CliValueField(forms.CharField):
    """A value typed the way the CLI accepts it (`2m0s`, `1GB`, `-1`); cleans to the API's typed
    value and prints back normalised."""

    def __init__(self, parse: Callable[[str], Any], show: Callable[[Any], str], *,
                 max_chars: int = 10_000, **kwargs: Any) -> None:
        self.parse, self.show, self.max_chars = parse, show, max_chars
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        # Checked on the text as typed: the parsed value (a list, a number) hides it.
        if len(text) > self.max_chars:
            raise forms.ValidationError(f"At most {self.max_chars:,} characters.")
        if "\x00" in text:
            raise forms.ValidationError("Null characters are not allowed.")
        try:
            return self.parse(text)
        except cli_values.ParseError as exc:
            raise forms.ValidationError(str(exc)) from None


class Questions:
    """The fields of a form asking a translator's questions, each labelled with its prompt
    (`labels`: the translator's LABELS). `required`: whether a value typed the CLI's way must
    be given unless a field says otherwise (every `nats stream add` question; few consumer
    options)."""

    def __init__(self, labels: dict[str, str], *, required: bool = True) -> None:
        self.labels, self.required = labels, required

    def cli(self, name: str, parse: Callable[[str], Any], show: Callable[[Any], str],
            **kwargs: Any) -> CliValueField:
        kwargs.setdefault("required", self.required)
        return CliValueField(parse, show, label=self.labels[name], **kwargs)

    def limit(self, name: str, **kwargs: Any) -> CliValueField:
        """A count, or -1 for unlimited."""
        return self.cli(name, cli_values.parse_limit, cli_values.format_limit, **kwargs)

    def size(self, name: str, **kwargs: Any) -> CliValueField:
        return self.cli(name, cli_values.parse_size, cli_values.format_size, **kwargs)

    def duration(self, name: str, show: Callable[[int], str] = cli_values.format_duration,
                 **kwargs: Any) -> CliValueField:
        return self.cli(name, cli_values.parse_duration, show, **kwargs)

    def choice(self, name: str, choices: list[tuple[str, str]],
               **kwargs: Any) -> forms.ChoiceField:
        return forms.ChoiceField(label=self.labels[name], choices=choices, **kwargs)

    def text(self, name: str, **kwargs: Any) -> forms.CharField:
        """An optional subject or name."""
        return forms.CharField(label=self.labels[name], required=False,
                               max_length=naming.MAX_SUBJECT_BYTES, **kwargs)

    def yes_no(self, name: str) -> forms.TypedChoiceField:
        """The CLI's yes/no question, cleaned to a bool."""
        return forms.TypedChoiceField(label=self.labels[name], choices=YES_NO,
                                      coerce=lambda value: value == "yes")

    def check(self, name: str) -> forms.BooleanField:
        """A flag: unticked is off."""
        return forms.BooleanField(label=self.labels[name], required=False)


class SeenField(forms.CharField):
    """What a page that destroys something showed of it (a sighting: when it was made, its
    config), signed into the page and posted back, so the job acts on that one only and not on
    one made again or changed since. Left out (a script's POST), nothing is compared."""

    widget = forms.HiddenInput
    SALT = "memphisadmin.seen"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, max_length=1_000_000, **kwargs)

    @classmethod
    def sign(cls, seen: dict[str, Any]) -> str:
        return signing.dumps(seen, salt=cls.SALT, compress=True)

    def to_python(self, value: Any) -> dict[str, Any] | None:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return signing.loads(text, salt=self.SALT)
        except signing.BadSignature:
            raise forms.ValidationError("This page is out of date: reload it.") from None


class ActsOnWhatItSaw(forms.Form):
    """A form that changes or destroys what its page showed (`info`, as last read): the
    sighting travels along, for the job to act on that object only."""

    seen = SeenField()

    def __init__(self, *args: Any, info: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if info:
            self.fields["seen"].initial = SeenField.sign(stream_config.sighting(info))

    @property
    def seen_params(self) -> dict[str, Any]:
        seen = self.cleaned_data.get("seen")
        return {"seen": seen} if seen else {}


class EditsLiveConfig(forms.Form):
    """A form that edits a live config (a stream's, a consumer's). It carries, signed, the
    config it was filled from: the changes are what the user changed against that one, so
    fields left alone are never written, and one someone else changed meanwhile is an error on
    its field. `translator` is the resource's pure module (stream_config, consumer_config)."""

    translator: ModuleType
    loaded_salt: str
    TEXT_OPTIONS: tuple[str, ...] = ()  # free texts: no invisible or control characters
    current: dict[str, Any] | None
    changes: dict[str, list[Any]]

    def edit(self, current: dict[str, Any], version: Any) -> None:
        """Make this an edit of `current`: the loaded config carried along, and the fields the
        server will not change read-only, saying why."""
        self.fields["loaded"] = forms.CharField(
            widget=forms.HiddenInput, initial=self.sign(current), required=False,
            max_length=1_000_000)
        for name, field in self.fields.items():
            if reason := self.translator.read_only_reason(name, current, version):
                field.disabled = True
                field.help_text = reason

    @property
    def basic_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.translator.BASIC_FIELDS]

    @property
    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.translator.ADVANCED_FIELDS if name in self.fields]

    @classmethod
    def sign(cls, config: dict[str, Any]) -> str:
        return signing.dumps(config, salt=cls.loaded_salt, compress=True)

    def answers(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """The cleaned answers (the loaded config aside), or None when the form has errors:
        its fields' own, or a free text with invisible or control characters."""
        if self.errors:
            return None
        values = {name: data[name] for name in self.fields if name in data and name != "loaded"}
        for name in self.TEXT_OPTIONS:
            # "".join: a text, or a list of names (sources, tags)
            if hidden := naming.hidden_characters("".join(values.get(name) or "")):
                self.add_error(name, f"Invisible or control characters: {', '.join(hidden)}.")
        return None if self.errors else values

    def loaded_changes(self, data: dict[str, Any], config: dict[str, Any]) -> bool:
        """Work out self.changes from `config` (what the form now says); False (with an error)
        when the loaded config is not one this site signed."""
        try:
            loaded = signing.loads(data.get("loaded", ""), salt=self.loaded_salt)
        except signing.BadSignature:
            self.add_error(None, "This form was altered or is from another page: reload it.")
            return False
        translator = self.translator
        editable = [name for name, field in self.fields.items()
                    if not field.disabled and name != "loaded"]
        self.changes = translator.diff(loaded, config, translator.api_keys(editable))
        for key in translator.conflicts(self.current, self.changes):
            self.add_error(
                translator.FIELD_OF_KEY.get(key, key),
                "Changed by someone else since you opened this form (now "
                f"{translator.format_value(key, self.current.get(key))}): reload to edit it.")
        return True

    def add_rule_errors(self, errors: dict[str, list[str]]) -> None:
        for field, messages in errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)

    def normalise(self) -> None:
        """Show values back the way they were understood: `1GB` → `1GiB`, `90s` → `1m30s`."""
        data = self.data.copy()
        for name, field in self.fields.items():
            if isinstance(field, CliValueField) and not field.disabled \
                    and self.cleaned_data.get(name) is not None:
                data[name] = field.show(self.cleaned_data[name])
        self.data = data

