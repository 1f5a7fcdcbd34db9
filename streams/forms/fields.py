"""Form fields the stream and consumer forms share: values typed the way the nats CLI takes
them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms

from streams import stream_config

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
        except stream_config.ParseError as exc:
            raise forms.ValidationError(str(exc)) from None
