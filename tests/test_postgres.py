"""PostgreSQL, the production database of docker-compose: the same tests run against a real
PostgreSQL server started here (a nested pytest session with DATABASE_URL pointing at it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.postgres_server import PostgresServer
from tests.support.project import ROOT

ON_POSTGRES = [
    "tests/test_profiles.py", "tests/test_jobs.py", "tests/test_audit_integrity.py",
    "tests/test_audit_log.py", "tests/test_big_numbers.py", "tests/test_login.py",
]


def test_suite_passes_on_postgresql(tmp_path: Path) -> None:
    server = PostgresServer.start()
    try:
        env = {**os.environ, "DATABASE_URL": server.url("memphisadmin")}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--basetemp={tmp_path / 'pytest'}", "-k", "not sqlite", *ON_POSTGRES],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )
    finally:
        server.stop()
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in summary and "skipped" not in summary, summary
