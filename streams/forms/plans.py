"""The plan forms: which definitions to plan for, and applying a plan. Deleting streams is only
ever asked for with the profile's name typed out."""

from __future__ import annotations

from typing import Any

from django import forms


class _TypedConfirmation(forms.Form):
    confirm_profile = forms.CharField(label="Type the connection's name to confirm",
                                      required=False, max_length=200)

    def __init__(self, *args: Any, profile_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile_name = profile_name

    def _require_confirmation(self) -> None:
        if self.cleaned_data.get("confirm_profile") != self.profile_name:
            self.add_error("confirm_profile", f"Deleting streams needs {self.profile_name} "
                                              "typed exactly.")


class PlanForm(_TypedConfirmation):
    """From the stream list: the ticked streams, the managed ones the filters show, or every
    definition of the profile, the last optionally deleting what has no definition."""

    SCOPES = [("ticked", "ticked streams"), ("matching", "managed streams shown"),
              ("profile", "the whole connection")]
    scope = forms.ChoiceField(choices=SCOPES)
    delete_missing = forms.BooleanField(
        required=False, label="also delete the streams on the server that have no definition")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("delete_missing"):
            if cleaned.get("scope") != "profile":
                self.add_error("delete_missing", "Only a plan for the whole connection can "
                                                 "delete streams.")
            self._require_confirmation()
        return cleaned


class ApplyForm(_TypedConfirmation):
    """Applying a plan that deletes streams asks again, whoever proposed it."""

    def __init__(self, *args: Any, deletes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deletes = deletes

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.deletes:
            self._require_confirmation()
        return cleaned
