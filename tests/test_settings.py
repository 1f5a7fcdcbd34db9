"""Production mode refuses to start on development defaults."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import ROOT

GOOD = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 50,
    "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "AUDIT_HMAC_KEY": "h" * 40,
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in GOOD}
    environment.update({**GOOD, **env, "DJANGO_SETTINGS_MODULE": "memphisadmin.settings"})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env={k: v for k, v in environment.items() if v is not None and v != "-"},
        capture_output=True, text=True, timeout=60,
    )


def test_production_settings_load_with_real_keys() -> None:
    result = load_settings()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY": "-"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 40}, "SECRET_KEY must be set"),
        ({"ENCRYPTION_KEYS": "-"}, "ENCRYPTION_KEYS (Fernet keys, newest first) must be set"),
        ({"ENCRYPTION_KEYS": "not-a-key"}, "no Fernet key"),
        ({"AUDIT_HMAC_KEY": "-"}, "AUDIT_HMAC_KEY must be set"),
        ({"REDIS_URL": "-"}, "REDIS_URL must point at the Redis"),
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"LOGIN_FAILURE_LIMIT": "five"}, "LOGIN_FAILURE_LIMIT must be a whole number"),
        ({"LOGIN_LOCKOUT_MINUTES": "0"}, "LOGIN_LOCKOUT_MINUTES must be at least 1"),
    ],
)
def test_production_refuses_to_start_without(env: dict[str, str], message: str) -> None:
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr
