"""The connection profile form: every authentication method, bounded fields, write-only
secrets."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.validators import MaxLengthValidator
from django.db.models import QuerySet

from streams import naming, system_streams
from streams.models import AuthMethod, BrokerKind, Profile, Team

MEMPHIS_PORT = 6666
MAX_SERVERS = 16
MAX_CONNECT_TIMEOUT = 30.0
# Bounds on what a profile holds: generous for real credentials, far below abuse.
MAX_CHARS = {"description": 1000, "password": 1024, "token": 4096, "creds": 64 * 1024,
             "tls_ca": 256 * 1024, "tls_client_cert": 64 * 1024, "tls_client_key": 64 * 1024}
HOSTNAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?", re.A)
SUBJECT_TOKEN = re.compile(r"[^\s.*>]+")
NKEY_SEED = re.compile(r"^S[A-Z]{1}[A-Z2-7]{56}$")
CREDS_JWT = re.compile(
    r"-----BEGIN NATS USER JWT-----\s*(\S+)\s*------END NATS USER JWT------", re.S
)
CREDS_SEED = re.compile(
    r"-----BEGIN USER NKEY SEED-----\s*(\S+)\s*------END USER NKEY SEED------", re.S
)
PEM_BLOCK = r"-----BEGIN {label}-----\s*[A-Za-z0-9+/=\s]+-----END {label}-----"

CAPTURE_CONSENT = (
    f"I agree that this dashboard creates a stream named {system_streams.CAPTURE_STREAM} on "
    "this broker, in this connection's account, that keeps a copy of every JetStream API "
    "advisory (who called which API, with the request and the answer) for at most 7 days and "
    "8 MiB, using the account's storage and one of its streams, so that changes made while "
    "the listener is stopped are still recorded. Unticking this removes the stream.")

# Which secrets each authentication method needs, and which plain fields.
AUTH_NEEDS: dict[str, tuple[str, ...]] = {
    AuthMethod.NONE: (),
    AuthMethod.USER_PASSWORD: ("username",),
    AuthMethod.TOKEN: ("token",),
    AuthMethod.MEMPHIS_TOKEN: ("username", "token"),
    AuthMethod.MEMPHIS_PASSWORD: ("username", "password"),
    AuthMethod.NKEY: ("nkey_seed",),
    AuthMethod.CREDS: ("creds",),
}


class SecretInput(forms.PasswordInput):
    """Write-only: the stored value is never rendered back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(render_value=False, attrs={"autocomplete": "new-password"}, **kwargs)


class SecretTextarea(forms.Textarea):
    def format_value(self, value: Any) -> None:
        return None


class ProfileForm(forms.ModelForm):
    creds_file = forms.FileField(
        label="or upload a .creds file", required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".creds,.txt"}),
    )

    class Meta:
        model = Profile
        fields = [
            "name", "description", "team", "read_only", "requires_approval", "broker_kind",
            "servers", "connect_timeout", "js_domain", "js_api_prefix", "auth_method", "username",
            "password", "token", "nkey_seed", "creds", "tls_ca", "tls_client_cert",
            "tls_client_key", "tls_server_name",
            "record_outside", "keep_advisories",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "servers": forms.Textarea(attrs={"rows": 2, "placeholder": "nats://127.0.0.1:4222"}),
            "password": SecretInput(),
            "token": SecretInput(),
            "nkey_seed": SecretInput(),
            "creds": SecretTextarea(attrs={"rows": 4}),
            "tls_ca": forms.Textarea(attrs={"rows": 3}),
            "tls_client_cert": forms.Textarea(attrs={"rows": 3}),
            "tls_client_key": SecretTextarea(attrs={"rows": 3}),
        }
        help_texts = {
            "username": "User, or the Memphis application user.",
            "token": "Token, or the Memphis connection token (sent as USER::TOKEN).",
            "keep_advisories": CAPTURE_CONSENT,
        }

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The teams whose profiles the user manages: a profile moves only between those. With
        # one, it is the answer unless another is sent (scripts post without it).
        self.fields["team"].queryset = teams
        self.fields["team"].empty_label = None
        self.fields["team"].required = not (self.instance.pk or teams.count() == 1)
        # Secrets are write-only: a blank field keeps what is stored, a tick clears it.
        self.stored_secrets = {
            name for name in Profile.SECRET_FIELDS if getattr(self.instance, name, "")
        }
        for name in Profile.SECRET_FIELDS:
            self.fields[name].required = False
            if name in self.stored_secrets:
                self.fields[name].help_text = "Set — leave blank to keep."
                self.fields[f"clear_{name}"] = forms.BooleanField(
                    label="clear", required=False
                )
        for name, limit in MAX_CHARS.items():
            self.fields[name].validators.append(MaxLengthValidator(limit))
            self.fields[name].widget.attrs["maxlength"] = limit
        if self.instance.pk:  # the version this form shows, so a save can tell it is stale
            self.fields["loaded_at"] = forms.CharField(
                widget=forms.HiddenInput, required=False,
                initial=self.instance.updated_at.isoformat())
        self.changed_secrets: set[str] = set()

    def clean_team(self) -> Team:
        """Left out: the profile's team, or a new one's only choice."""
        team = self.cleaned_data.get("team")
        if team is None:
            team = (Team.objects.get(pk=self.instance.team_id) if self.instance.pk
                    else self.fields["team"].queryset.get())
        return team

    def clean_loaded_at(self) -> datetime | None:
        text = self.cleaned_data["loaded_at"]
        try:
            return datetime.fromisoformat(text) if text else None
        except ValueError:
            raise forms.ValidationError("This form was altered: reload it.") from None

    def clean_servers(self) -> str:
        urls = [line.strip() for line in self.cleaned_data["servers"].splitlines() if line.strip()]
        if not urls:
            raise forms.ValidationError("Give at least one server URL.")
        if len(urls) > MAX_SERVERS:
            raise forms.ValidationError(f"At most {MAX_SERVERS} servers.")
        kind = self.data.get(self.add_prefix("broker_kind"), BrokerKind.NATS)
        default_port = MEMPHIS_PORT if kind == BrokerKind.MEMPHIS else 4222
        normalised = []
        for url in urls:
            if len(url) > 300:
                raise forms.ValidationError("A server URL has at most 300 characters.")
            try:
                parts = urlsplit(url if "://" in url else f"nats://{url}")
            except ValueError as exc:  # "Invalid IPv6 URL"
                raise forms.ValidationError(f"{url}: not a URL ({exc}).") from None
            if parts.scheme not in {"nats", "tls"}:
                raise forms.ValidationError(f"{url}: use nats:// or tls://.")
            if parts.username or parts.password:
                raise forms.ValidationError(
                    f"{parts.hostname}: put credentials in the authentication fields, "
                    "not in the URL."
                )
            if not parts.hostname:
                raise forms.ValidationError(f"{url}: a host name is missing.")
            if not _valid_host(parts.hostname):
                raise forms.ValidationError(f"{url}: “{parts.hostname}” is not a host name or "
                                            "IP address.")
            try:
                port = default_port if parts.port is None else parts.port
            except ValueError:
                raise forms.ValidationError(f"{url}: the port must be 1–65535.") from None
            if not 0 < port < 65536:
                raise forms.ValidationError(f"{url}: the port must be 1–65535.")
            if parts.path not in {"", "/"} or parts.query:
                raise forms.ValidationError(f"{url}: a server URL has no path or query.")
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            normalised.append(f"{parts.scheme}://{host}:{port}")
        return "\n".join(normalised)

    def clean_connect_timeout(self) -> float:
        value = self.cleaned_data["connect_timeout"]
        if not 0.1 <= value <= MAX_CONNECT_TIMEOUT:
            raise forms.ValidationError(f"Between 0.1 and {MAX_CONNECT_TIMEOUT:g} seconds.")
        return value

    def clean_js_domain(self) -> str:
        domain = self.cleaned_data["js_domain"].strip()
        if domain and (not SUBJECT_TOKEN.fullmatch(domain)
                       or naming.hidden_characters(domain)):
            raise forms.ValidationError("A domain is one subject token: no spaces, dots, * or >.")
        return domain

    def clean_js_api_prefix(self) -> str:
        prefix = self.cleaned_data["js_api_prefix"].strip().rstrip(".")
        tokens = prefix.split(".")
        if prefix and (not all(SUBJECT_TOKEN.fullmatch(token) for token in tokens)
                       or naming.hidden_characters(prefix)):
            raise forms.ValidationError("A prefix is a subject such as $JS.hub.API: tokens "
                                        "separated by dots, without spaces, * or >.")
        return prefix

    def clean_tls_server_name(self) -> str:
        name = self.cleaned_data["tls_server_name"].strip()
        if name and not _valid_host(name):
            raise forms.ValidationError("A host name such as nats.example.com.")
        return name

    def clean_nkey_seed(self) -> str:
        seed = self.cleaned_data["nkey_seed"].strip()
        if seed and not (NKEY_SEED.match(seed) and seed.startswith("SU")):
            raise forms.ValidationError(
                "A user NKey seed starts with SU and has 58 characters (A–Z, 2–7)."
            )
        return seed

    def clean_creds(self) -> str:
        text = self.cleaned_data["creds"].strip()
        upload = self.files.get(self.add_prefix("creds_file"))
        if upload:
            if upload.size > 64 * 1024:
                raise forms.ValidationError("A credentials file is a few kilobytes at most.")
            text = upload.read().decode("utf-8", "replace").strip()
        if text:
            jwt, seed = CREDS_JWT.search(text), CREDS_SEED.search(text)
            # nats-py can hang on malformed creds: only well-formed blocks reach it.
            if not jwt or jwt.group(1).count(".") != 2:
                raise forms.ValidationError("No BEGIN NATS USER JWT block with a JWT in it.")
            if not seed or not NKEY_SEED.match(seed.group(1)):
                raise forms.ValidationError("No BEGIN USER NKEY SEED block with a user seed.")
        return text

    def _clean_pem(self, name: str, labels: tuple[str, ...], example: str) -> str:
        text = self.cleaned_data[name].strip()
        if text and not any(re.search(PEM_BLOCK.format(label=label), text) for label in labels):
            raise forms.ValidationError(f"Paste PEM text: -----BEGIN {example}----- …")
        return text

    def clean_tls_ca(self) -> str:
        return self._clean_pem("tls_ca", ("CERTIFICATE",), "CERTIFICATE")

    def clean_tls_client_cert(self) -> str:
        return self._clean_pem("tls_client_cert", ("CERTIFICATE",), "CERTIFICATE")

    def clean_tls_client_key(self) -> str:
        labels = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")
        return self._clean_pem("tls_client_key", labels, "PRIVATE KEY")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in Profile.SECRET_FIELDS:
            new = data.get(name, "")
            if self.cleaned_data.get(f"clear_{name}"):
                data[name] = ""
            elif not new and name in self.stored_secrets:
                data[name] = getattr(self.instance, name)  # blank keeps the stored value
            if data.get(name, "") != (getattr(self.instance, name) or ""):
                self.changed_secrets.add(name)
        method = data.get("auth_method", AuthMethod.NONE)
        for name in AUTH_NEEDS.get(method, ()):
            if not data.get(name):
                self.add_error(name, f"Required for {AuthMethod(method).label.lower()}.")
        if data.get("tls_client_cert") and not data.get("tls_client_key"):
            self.add_error("tls_client_key", "A client certificate needs its private key.")
        if data.get("tls_client_key") and not data.get("tls_client_cert"):
            self.add_error("tls_client_cert", "A client key needs its certificate.")
        if data.get("keep_advisories") and not data.get("record_outside"):
            self.add_error("keep_advisories", "Only with Record changes made outside: the "
                                              "capture stream is read by its listener.")
        if method == AuthMethod.MEMPHIS_TOKEN and "::" in data.get("username", ""):
            self.add_error("username", "Give the application user alone; :: is added for you.")
        for name in ("name", "username"):
            if hidden := naming.hidden_characters(data.get(name) or ""):
                self.add_error(name, f"Invisible or control characters: {', '.join(hidden)}.")
        return data


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return len(host) <= 253 and bool(HOSTNAME.fullmatch(host.lower()))
    return True
