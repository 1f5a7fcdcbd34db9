"""Production mode refuses to start on development defaults."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.project import ROOT

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
        ({"JOB_WAIT": "-1"}, "JOB_WAIT must be a number of at least 0"),
        ({"JOB_BROKER_TIMEOUT": "nan"}, "JOB_BROKER_TIMEOUT must be a number of at least 1"),
        ({"JOB_REAP_INTERVAL": "0"}, "JOB_REAP_INTERVAL must be a number of at least 0.1"),
    ],
)
def test_production_refuses_to_start_without(env: dict[str, str], message: str) -> None:
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_passes_the_deploy_checks() -> None:
    # The browser tests allow async-unsafe ORM calls in this process; a deployment does not.
    inherited = {k: v for k, v in os.environ.items()
                 if k not in GOOD and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {**inherited, **GOOD, "SECRET_KEY": secrets.token_urlsafe(50),
                   "DJANGO_SETTINGS_MODULE": "memphisadmin.settings"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # HTTPS redirect and HSTS are on; only the operator can vouch for every subdomain.
    warnings = set(re.findall(r"\(security\.(W\d+)\)", result.stderr))
    assert warnings == {"W005", "W021"}, result.stderr


def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    result = load_settings(MEMPHISADMIN_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db.sqlite3").stat().st_mode & 0o777 == 0o600
    (tmp_path / "db.sqlite3").chmod(0o644)  # made by an older version
    assert load_settings(MEMPHISADMIN_VAR_DIR=str(tmp_path)).returncode == 0
    assert (tmp_path / "db.sqlite3").stat().st_mode & 0o777 == 0o600
