"""Where the project is, and the test database as the processes the tests start see it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def subprocess_database_url() -> str:
    """The test database as a URL, for the processes the tests start (worker, web)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def dev_environment(redis_url: str, **env: str) -> dict[str, str]:
    """What a `./dev` process the tests start runs with: this virtualenv, the test database
    and `redis_url`, unbuffered output; `env` on top."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
        **env,
    }
