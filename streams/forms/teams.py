"""The team screens' forms: a new team, a member added, a member's role changed. Validation
only; the rows are written by Membership.objects."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import URLValidator

from streams.models import Membership, Role, Team


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the team a name.")
        if Team.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(f"There is a team named {name} already.")
        return name


class MemberForm(forms.Form):
    """Add an existing account to the team (superusers make accounts, in Django's admin)."""

    username = forms.CharField(label="User name", max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team

    def clean_username(self) -> Any:
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No account is named {name}: a superuser makes "
                                        "accounts in the admin site.")
        if Membership.objects.filter(team=self.team, user=user).exists():
            raise forms.ValidationError(f"{name} is a member of {self.team.name} already.")
        return user


class RoleForm(forms.Form):
    """A member's new role, with the role the page showed: a change made meanwhile by another
    admin is not overwritten unseen."""

    role = forms.ChoiceField(choices=Role.choices)
    seen = forms.ChoiceField(choices=Role.choices, widget=forms.HiddenInput)


class WebhookForm(forms.Form):
    """Where the team's approval events go, and the secret they are signed with: write-only,
    like a profile's secrets (blank keeps the stored one; an empty URL removes the webhook)."""

    url = forms.URLField(label="Webhook URL", max_length=500, required=False,
                         validators=[URLValidator(schemes=["http", "https"])],
                         assume_scheme="https")
    secret = forms.CharField(label="Secret", max_length=200, required=False,
                             widget=forms.PasswordInput(render_value=False),
                             help_text="At least 16 characters; the receiver checks the "
                                       "X-Memphisadmin-Signature header with it.")

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        if team.webhook_secret:
            self.fields["secret"].help_text = "Set — leave blank to keep."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        secret = cleaned.get("secret") or ""
        if secret and len(secret) < 16:
            self.add_error("secret", "Use at least 16 characters.")
        elif cleaned.get("url") and not (secret or self.team.webhook_secret):
            self.add_error("secret", "A webhook needs a secret to sign its events with.")
        return cleaned
