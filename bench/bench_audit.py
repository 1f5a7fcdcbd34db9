"""Audit-log review page vs Django admin's changelist on the same 1,000,000-entry table.

Run: .venv/bin/python bench/bench_audit.py [--rows N] [--repeat R] [--skip-verify]

Uses a temporary directory of its own (the SQLite file, static root and var directory) and
migrates its database. Seeds the entries chained with streams.seal.entry_hash — the same
HMAC chain record() computes, entry after entry — with timestamps spread over a year, 20,000
per executemany. Then requests the same filtered list through the Django test client as a
logged-in superuser, prints the median times and the ratio (target: the review page at least
20x faster), and verifies the whole chain."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

BATCH = 20_000
ACTIONS = ["job.requested", "job.finished", "profile.changed", "login", "logout",
           "permission.denied", "profile.created", "stream.changed", "audit.exported"]
OUTCOMES = ["succeeded", "succeeded", "succeeded", "failed", "denied", "requested"]


def seed(rows: int) -> float:
    """Entries chained exactly as record() chains them (seal.entry_hash over the same content
    and the previous hash), written with executemany because Django's bulk_create spends most
    of its time compiling 47-row INSERTs on SQLite."""
    from django.db import connection, transaction

    from streams import seal
    from streams.models import AuditChainHead, AuditEvent

    rng = random.Random(4)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / rows
    columns = [*seal.CHAINED_FIELDS, "prev_hash", "hash"]
    sql = (f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    prev = seal.GENESIS
    began = time.perf_counter()
    for offset in range(0, rows, BATCH):
        batch = []
        for i in range(offset, min(offset + BATCH, rows)):
            action = rng.choice(ACTIONS)
            changed = action in {"profile.changed", "stream.changed"}
            entry = {
                "seq": i + 1, "at": start + step * i, "actor_id": None,
                "actor_name": f"user-{rng.randrange(50)}",
                "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
                "request_id": f"{i:032x}", "action": action,
                "target_type": "profile" if action.startswith("profile") else "stream",
                "target_name": f"stream-{rng.randrange(2000)}", "profile_id": None,
                "profile_name": f"profile-{rng.randrange(20)}",
                # Jobs of about three entries each, so the unfiltered page folds job entries.
                "job_id": i // 3 + 1 if action.startswith(("job.", "stream.")) else None,
                "outcome": rng.choice(OUTCOMES),
                "before": {"max_msgs": -1} if changed else None,
                "after": {"max_msgs": rng.randrange(10_000)} if changed else None,
                "changes": None, "message": f"bench entry {i}",
            }
            digest = seal.entry_hash(entry, prev)
            row = {**entry, "prev_hash": prev, "hash": digest,
                   "at": connection.ops.adapt_datetimefield_value(entry["at"])}
            for name in ("before", "after"):
                row[name] = None if row[name] is None else json.dumps(row[name])
            batch.append([row[name] for name in columns])
            prev = digest
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
            head = (offset + len(batch), prev, entry["at"])
            AuditChainHead.objects.filter(pk=1).update(
                seq=head[0], hash=head[1], at=head[2], mac=seal.head_mac(*head)
            )
        done = offset + len(batch)
        if done % 200_000 == 0 or done == rows:
            print(f"  seeded {done:,} entries ({time.perf_counter() - began:.0f} s)", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what any long-lived SQLite database has: planner statistics
    return time.perf_counter() - began


def median_ms(fetch: Callable[[], object], repeat: int) -> float:
    fetch()  # warm caches and the template loader
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fetch()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args()

    # A directory of its own: WhiteNoise scans STATIC_ROOT, and /tmp changes under it.
    workdir = Path(tempfile.mkdtemp(prefix="memphisadmin-bench-audit-"))
    db_path = workdir / "db.sqlite3"
    # Production settings (DEBUG off, throwaway keys). Not the test environment either: it
    # instruments every template render (for response.context), a cost no server pays, and
    # pages drawn from many small templates (form widgets, admin) would pay the most.
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "memphisadmin.settings", "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{db_path}", "ALLOWED_HOSTS": "testserver",
        "SECRET_KEY": secrets.token_urlsafe(50), "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(), "REDIS_URL": "redis://127.0.0.1:1/0",
        "LOG_LEVEL": "WARNING", "STATIC_ROOT": str(workdir),
        "SECURE_SSL_REDIRECT": "false",  # the test client speaks plain HTTP
        "MEMPHISADMIN_VAR_DIR": str(workdir),
    })
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from streams.audit.integrity import verify

    try:
        call_command("migrate", verbosity=0, skip_checks=True)
        print(f"database: {db_path}")
        print(f"seeding {args.rows:,} audit entries …", flush=True)
        seconds = seed(args.rows)
        print(f"seeded in {seconds:.0f} s ({args.rows / seconds:,.0f} entries/s)")

        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x" * 20)
        client = Client()
        client.force_login(user)

        cases = [
            ("first page", "/audit/?action=profile.changed&outcome=failed",
             "/admin/streams/auditevent/?action__exact=profile.changed&outcome__exact=failed"),
            ("page 20", None,
             "/admin/streams/auditevent/?action__exact=profile.changed&outcome__exact=failed"
             "&p=19"),
            ("unfiltered", "/audit/", "/admin/streams/auditevent/"),
        ]
        # The review page's 20th page is reached by following its own "older" links.
        walk = "/audit/?action=profile.changed&outcome=failed"
        for _ in range(19):
            older = re.search(r'rel="next" href="[^"]*[?&](?:amp;)?before=(\d+)',
                              client.get(walk).content.decode())
            walk = f"/audit/?action=profile.changed&outcome=failed&before={older[1]}"
        cases[1] = ("page 20", walk, cases[1][2])

        print(f"\nmedian of {args.repeat} requests, filter action=profile.changed & "
              f"outcome=failed, {args.rows:,} entries")
        print(f"{'':12} {'review page':>12} {'admin':>12} {'ratio':>8}")
        for name, ours, admin in cases:
            for url in (ours, admin):
                assert client.get(url).status_code == 200, url
            ours_ms = median_ms(lambda url=ours: client.get(url), args.repeat)
            admin_ms = median_ms(lambda url=admin: client.get(url), args.repeat)
            print(f"{name:12} {ours_ms:10.1f}ms {admin_ms:10.1f}ms {admin_ms / ours_ms:7.1f}x",
                  flush=True)

        if not args.skip_verify:
            began = time.perf_counter()
            result = verify()
            print(f"\nverify_audit over the seeded chain: {'intact' if result.ok else 'BROKEN'}, "
                  f"{result.checked:,} entries in {time.perf_counter() - began:.0f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
