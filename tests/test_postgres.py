"""PostgreSQL, the production database of docker-compose: the same tests run against a real
PostgreSQL server started here (a nested pytest session with DATABASE_URL pointing at it)."""

from __future__ import annotations

from pathlib import Path

from tests.support.postgres_server import pytest_on_postgresql

ON_POSTGRES = [
    "tests/test_profiles.py", "tests/test_jobs.py", "tests/test_audit_integrity.py",
    "tests/test_audit_log.py", "tests/test_big_numbers.py", "tests/test_login.py",
]


def test_suite_passes_on_postgresql(tmp_path: Path) -> None:
    pytest_on_postgresql(["-k", "not sqlite", *ON_POSTGRES], tmp_path / "pytest", timeout=900)
