"""Audit log integrity: the hash chain, the append-only guards (model, admin, database), tamper
detection by verify_audit, the sealed and guarded chain head, heads kept outside the database
(--anchor, --expect-head), pruning with a checkpoint, concurrent writers on the real SQLite
file database, and the commands' progress on a terminal."""

from __future__ import annotations

import os
import pty
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.utils import timezone

from streams import audit, seal
from streams.audit import chain
from streams.models import AppendOnlyError, AuditChainHead, AuditCheckpoint, AuditEvent
from tests.support.project import ROOT, subprocess_database_url
from tests.support.waiting import wait_until

TABLE = AuditEvent._meta.db_table
HEAD = AuditChainHead._meta.db_table


def _write(count: int, **fields: Any) -> list[AuditEvent]:
    return [
        AuditEvent.objects.record(fields.get("action", "profile.changed"),
                                  audit.Context(ip="10.0.0.1"), target_type="profile",
                                  target_name=f"orders-{i}", outcome="succeeded",
                                  actor_name="alice", after={"servers": f"nats://h{i}:4222"})
        for i in range(count)
    ]


@contextmanager
def triggers_dropped() -> Iterator[None]:
    """What an attacker with database access does first: switch the guard off (then back on)."""
    tables = [TABLE, AuditCheckpoint._meta.db_table, HEAD]
    if connection.vendor == "postgresql":
        for table in tables:
            _sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            yield
        finally:
            for table in tables:
                _sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                       f"AND tbl_name IN ({', '.join(['%s'] * len(tables))})", tables)
        saved = cursor.fetchall()
        assert len(saved) == 6
        for name, _ in saved:
            cursor.execute(f"DROP TRIGGER {name}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _, sql in saved:
                cursor.execute(sql)


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@pytest.mark.django_db
def test_entries_form_a_gapless_chain_that_verifies() -> None:
    events = _write(5)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS
    assert all(later.prev_hash == earlier.hash
               for earlier, later in zip(events, events[1:], strict=False))
    stored = AuditEvent.objects.get(seq=3)
    assert seal.entry_hash(seal.chained_content(stored), stored.prev_hash) == stored.hash
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (5, events[-1].hash)
    result = audit.verify()
    assert result.ok and result.checked == 5 and (result.first_seq, result.last_seq) == (1, 5)


@pytest.mark.django_db
def test_hash_is_keyed_by_the_secret_outside_the_database(settings: Any) -> None:
    (event,) = _write(1)
    settings.AUDIT_HMAC_KEY = "another-key-another-key-another-key"
    assert seal.entry_hash(seal.chained_content(event), event.prev_hash) != event.hash
    assert not audit.verify().ok


@pytest.mark.django_db
def test_time_never_runs_backwards_along_the_chain() -> None:
    future = timezone.now() + timedelta(hours=1)  # say, written by a host whose clock is ahead
    AuditEvent.objects.append([AuditEvent(at=future, action="login")])
    later = AuditEvent.objects.record("logout", audit.Context())
    assert later.at == future and AuditChainHead.objects.get().at == future
    with pytest.raises(ValueError, match="earlier"):
        AuditEvent.objects.append([AuditEvent(at=future - timedelta(seconds=1), action="login")])
    assert audit.verify().ok


@pytest.mark.django_db
def test_orm_refuses_to_change_or_delete_entries() -> None:
    (event,) = _write(1)
    event.message = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(message="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).message == ""


@pytest.mark.django_db
def test_database_triggers_refuse_update_and_delete() -> None:
    _write(2)
    for statement in (f"UPDATE {TABLE} SET message = 'x' WHERE seq = 1",
                      f"DELETE FROM {TABLE} WHERE seq = 1"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _sql(statement)
    assert AuditEvent.objects.filter(seq=1, message="").exists()


@pytest.mark.django_db
def test_checkpoints_are_append_only_too() -> None:
    _write(3)
    audit.prune(timezone.now() + timedelta(seconds=1), audit.Context())
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql(f"UPDATE {AuditCheckpoint._meta.db_table} SET removed = 0")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _sql(f"DELETE FROM {AuditCheckpoint._meta.db_table}")


@pytest.mark.django_db
def test_admin_shows_entries_read_only(client_alice: Client) -> None:
    (event,) = _write(1)
    changelist = client_alice.get("/admin/streams/auditevent/")
    assert changelist.status_code == 200 and b"orders-0" in changelist.content
    change_url = f"/admin/streams/auditevent/{event.pk}/change/"
    page = client_alice.get(change_url)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client_alice.post(change_url, {"message": "x"}).status_code == 403
    assert client_alice.post(f"/admin/streams/auditevent/{event.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert client_alice.get("/admin/streams/auditevent/add/").status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).message == ""


@pytest.mark.django_db
def test_verify_reports_an_edited_row() -> None:
    _write(5)
    with triggers_dropped():
        _sql(f"UPDATE {TABLE} SET target_name = 'innocent' WHERE seq = 3")
    with pytest.raises(CommandError, match="#3 does not match its hash"):
        call_command("verify_audit")
    run = AuditEvent.objects.get(action="audit.verified")
    assert run.outcome == "failed" and "#3" in run.message and run.actor_name.startswith("manage")


@pytest.mark.django_db
def test_verify_reports_a_deleted_row() -> None:
    _write(5)
    with triggers_dropped():
        _sql(f"DELETE FROM {TABLE} WHERE seq = 4")
    result = audit.verify()
    assert result.problem_seq == 4 and "missing" in result.problem


@pytest.mark.django_db
def test_verify_reports_two_swapped_rows() -> None:
    _write(5)
    with triggers_dropped():  # rows #2 and #3 trade places, hashes and all
        _sql(f"UPDATE {TABLE} SET seq = 0 WHERE seq = 2")
        _sql(f"UPDATE {TABLE} SET seq = 2 WHERE seq = 3")
        _sql(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 0")
    result = audit.verify()
    assert result.problem_seq == 2 and "altered" in result.problem


@pytest.mark.django_db
def test_verify_reports_rows_inserted_in_the_middle_or_past_the_head() -> None:
    _write(4)
    forged = AuditEvent.objects.values().get(seq=4)
    del forged["id"]
    forged.update(seq=5, target_name="forged", hash="f" * 64)
    with triggers_dropped():
        _sql(f"INSERT INTO {TABLE} ({', '.join(forged)}) VALUES "
             f"({', '.join(['%s'] * len(forged))})",
             [v if not isinstance(v, dict) else None for v in forged.values()])
    result = audit.verify()
    assert result.problem_seq == 5 and "beyond the chain head" in result.problem
    with triggers_dropped():  # now make room at #3 and put it there
        _sql(f"DELETE FROM {TABLE} WHERE seq = 5")
        _sql(f"UPDATE {TABLE} SET seq = seq + 10 WHERE seq >= 3")
        _sql(f"UPDATE {TABLE} SET seq = seq - 9 WHERE seq >= 13")
        _sql(f"INSERT INTO {TABLE} ({', '.join(forged)}) VALUES "
             f"({', '.join(['%s'] * len(forged))})",
             [3 if k == "seq" else (None if isinstance(v, dict) else v)
              for k, v in forged.items()])
    result = audit.verify()
    assert result.problem_seq == 3 and "does not match its hash" in result.problem


@pytest.mark.django_db
def test_verify_reports_entries_removed_from_the_end() -> None:
    _write(4)
    with triggers_dropped():
        _sql(f"DELETE FROM {TABLE} WHERE seq >= 3")
    result = audit.verify()
    assert result.problem_seq == 3 and "removed from the end" in result.problem


def _rewind_head_to(event: AuditEvent, mac: str | None = None) -> None:
    """Make the head claim `event` is the newest entry, keeping its MAC unless given one."""
    _sql(f"UPDATE {HEAD} SET seq = %s, hash = %s, at = %s{', mac = %s' if mac else ''} "
         "WHERE id = 1",
         [event.seq, event.hash, connection.ops.adapt_datetimefield_value(event.at),
          *([mac] if mac else [])])


def _verify_audit(*args: str) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def _printed_head(output: str) -> str:
    """The head verify_audit printed, as --expect-head takes it."""
    match = re.search(r"head #(\d+) ([0-9a-f]{64})$", output.strip())
    assert match is not None, output
    return f"{match[1]}:{match[2]}"


@pytest.mark.django_db
def test_head_always_exists_and_is_sealed_with_the_key() -> None:
    head = AuditChainHead.objects.get()  # created by migrate, before any entry
    assert (head.seq, head.hash, head.at) == (0, audit.GENESIS, None)
    assert head.mac == seal.head_mac(0, audit.GENESIS, None)
    assert "audit chain intact: 0 entries (no entries), head #0 " in _verify_audit()
    (newest,) = _write(1)  # after the run's own entry, #1
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (2, newest.hash)
    assert head.mac == seal.head_mac(2, newest.hash, newest.at)
    # Its own domain: the same values never yield an entry's hash or a checkpoint's MAC.
    assert head.mac not in {newest.hash, seal.checkpoint_mac(2, newest.hash, newest.at, 0)}


@pytest.mark.django_db
def test_verify_reports_entries_removed_from_the_end_with_the_head_rewound() -> None:
    _write(5)
    third = AuditEvent.objects.get(seq=3)
    with triggers_dropped():
        _sql(f"DELETE FROM {TABLE} WHERE seq > 3")
        _rewind_head_to(third)
    result = audit.verify()
    assert result.problem == "the chain head was altered: #3 does not match its MAC"
    with pytest.raises(CommandError, match="chain head was altered"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_head_sealed_with_another_key_is_reported(settings: Any) -> None:
    _write(5)
    third = AuditEvent.objects.get(seq=3)
    key, settings.AUDIT_HMAC_KEY = settings.AUDIT_HMAC_KEY, "a-guessed-key-a-guessed-key-a-guess"
    forged = seal.head_mac(3, third.hash, third.at)
    settings.AUDIT_HMAC_KEY = key
    with triggers_dropped():
        _sql(f"DELETE FROM {TABLE} WHERE seq > 3")
        _rewind_head_to(third, mac=forged)
    assert audit.verify().problem == "the chain head was altered: #3 does not match its MAC"


@pytest.mark.django_db
def test_next_write_records_a_rewound_head_instead_of_sealing_it() -> None:
    _write(5)
    with triggers_dropped():
        _sql(f"DELETE FROM {TABLE} WHERE seq > 3")
        _rewind_head_to(AuditEvent.objects.get(seq=3))
    AuditEvent.objects.record("login", audit.Context(), actor_name="bob")
    marker, login = AuditEvent.objects.filter(seq__gt=3).order_by("seq")
    assert (marker.seq, marker.action, login.seq, login.action) == (4, chain.HEAD_REBUILT, 5,
                                                                    "login")
    result = audit.verify()
    assert result.problem_seq == 4
    assert "records that the chain head did not match its MAC" in result.problem


@pytest.mark.django_db
def test_verify_reports_a_wiped_log_even_after_new_entries() -> None:
    _write(3)
    audit.prune(timezone.now() + timedelta(seconds=1), audit.Context())
    _write(1)
    with audit.deletion_gate():  # the gate (or dropped triggers) lets everything go
        for table in (TABLE, AuditCheckpoint._meta.db_table, HEAD):
            _sql(f"DELETE FROM {table}")
    assert not AuditEvent.objects.exists()
    with pytest.raises(CommandError, match="the chain head is missing: the log was wiped"):
        call_command("verify_audit")
    result = audit.verify()  # the failed run above wrote the first entry of a new chain
    assert result.problem_seq == 1 and "records that the chain head was missing" in result.problem


@pytest.mark.django_db
def test_database_triggers_refuse_to_move_the_head_back_or_delete_it() -> None:
    _write(2)
    statements = [(f"UPDATE {HEAD} SET seq = 1", "cannot move backwards"),
                  (f"DELETE FROM {HEAD}", "cannot be removed")]
    if connection.vendor == "postgresql":  # TRUNCATE skips row triggers
        statements.append((f"TRUNCATE {HEAD}", "cannot be removed"))
    for statement, refusal in statements:
        with pytest.raises(DatabaseError, match=refusal), transaction.atomic():
            _sql(statement)
    assert AuditChainHead.objects.get().seq == 2 and audit.verify().ok
    with audit.deletion_gate():  # what flush goes through
        _sql(f"DELETE FROM {HEAD}")
    assert not AuditChainHead.objects.exists()


@pytest.mark.django_db
def test_anchor_is_written_owner_only_with_the_verified_head(tmp_path: Path) -> None:
    events = _write(3)
    anchor = tmp_path / "audit-head"
    output = _verify_audit("--anchor", str(anchor))
    assert output.strip().endswith(f"head #3 {events[-1].hash}")
    assert anchor.read_text() == f"3:{events[-1].hash}\n"
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    _verify_audit("--anchor", str(anchor))  # moves on to the head this run checked
    newest = AuditEvent.objects.get(seq=4)
    assert newest.action == "audit.verified" and newest.after["head"] == f"3:{events[-1].hash}"
    assert anchor.read_text() == f"4:{newest.hash}\n"


def _restore_older_copy(head: dict[str, Any]) -> None:
    """What restoring an older backup does: the entries after its head are gone and the head
    is back at its earlier values, MAC and all."""
    with audit.deletion_gate():
        _sql(f"DELETE FROM {TABLE} WHERE seq > %s", [head["seq"]])
        _sql(f"DELETE FROM {HEAD}")
        AuditChainHead.objects.create(**head)


@pytest.mark.django_db
def test_anchor_reveals_a_log_restored_from_an_older_copy(tmp_path: Path) -> None:
    anchor = tmp_path / "audit-head"
    _write(3)
    _verify_audit("--anchor", str(anchor))
    backup = AuditChainHead.objects.values().get()
    _write(2)
    _verify_audit("--anchor", str(anchor))
    verified = anchor.read_text()
    assert verified.startswith("6:")
    _restore_older_copy(backup)
    assert audit.verify().ok  # consistent in itself: only the anchor can tell
    with pytest.raises(CommandError, match="the log no longer reaches the last verified head #6: "
                       "entries were removed from the end or the database was restored from "
                       "an older copy"):
        _verify_audit("--anchor", str(anchor))
    assert anchor.read_text() == verified  # kept for the next run
    failed = AuditEvent.objects.filter(action="audit.verified").latest("seq")
    assert failed.outcome == "failed" and failed.after["problem_seq"] == 6


@pytest.mark.django_db
def test_expect_head_reveals_an_older_copy_even_after_new_entries() -> None:
    _write(3)
    _verify_audit()
    backup = AuditChainHead.objects.values().get()
    _write(2)
    printed = _printed_head(_verify_audit())  # kept by the operator elsewhere
    assert printed.startswith("6:")
    _verify_audit("--expect-head", printed)
    _restore_older_copy(backup)
    _write(3)  # the restored copy is in use again, past #6, with other entries there
    assert audit.verify().ok
    with pytest.raises(CommandError, match="no longer reaches the last verified head #6"):
        _verify_audit("--expect-head", printed)


@pytest.mark.django_db
def test_anchor_still_passes_after_pruning_past_it(tmp_path: Path) -> None:
    anchor = tmp_path / "audit-head"
    _write(3)
    _verify_audit("--anchor", str(anchor))
    assert anchor.read_text().startswith("3:")
    audit.prune(timezone.now() + timedelta(seconds=1), audit.Context())
    assert not AuditEvent.objects.filter(seq__lte=4).exists()  # #3 lives on in the checkpoint
    _verify_audit("--anchor", str(anchor))
    assert anchor.read_text().startswith("5:")


@pytest.mark.django_db
def test_prune_removes_old_entries_leaves_a_checkpoint_and_is_audited() -> None:
    _write(3)
    cutoff = timezone.now()
    wait_until(lambda: timezone.now() > cutoff, 1, "the clock never moved past the cutoff")
    kept = _write(2)
    call_command("prune_audit", "--before", cutoff.isoformat())
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [4, 5, 6]
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.seq, checkpoint.removed) == (3, 3)
    assert kept[0].prev_hash == checkpoint.hash
    pruned = AuditEvent.objects.get(seq=6)
    assert pruned.action == "audit.pruned" and pruned.after["removed"] == 3
    assert pruned.actor_name.startswith("manage.py")
    call_command("verify_audit")  # passes: no CommandError
    assert AuditEvent.objects.filter(action="audit.verified", outcome="succeeded").exists()


@pytest.mark.django_db
def test_prune_by_date_only_removes_whole_days_before_it() -> None:
    _write(2)
    call_command("prune_audit", "--before", "2000-01-01")
    assert AuditEvent.objects.filter(seq__in=[1, 2]).exists()
    assert not AuditCheckpoint.objects.exists()
    assert audit.verify().ok


@pytest.mark.django_db
def test_after_pruning_tampering_is_still_detected() -> None:
    _write(4)
    audit.prune(timezone.now() + timedelta(seconds=1), audit.Context())
    _write(3)
    assert audit.verify().ok
    with triggers_dropped():
        _sql(f"DELETE FROM {TABLE} WHERE seq = 5")  # the first entry after the checkpoint
    result = audit.verify()
    assert result.problem_seq == 5 and "missing" in result.problem
    with triggers_dropped():
        _sql(f"UPDATE {AuditCheckpoint._meta.db_table} SET seq = 5, removed = 5")
    result = audit.verify()
    assert "checkpoint" in result.problem and "forged" in result.problem


@pytest.mark.django_db
def test_key_rotation_is_recorded_in_the_chain() -> None:
    _write(1)
    call_command("rotate_secrets")
    rotated = AuditEvent.objects.get(action="secrets.rotated")
    assert rotated.seq == 2 and rotated.actor_name.startswith("manage.py")
    assert audit.verify().ok


@pytest.mark.django_db(transaction=True)
def test_verify_audit_command_exits_non_zero_on_a_broken_chain() -> None:
    _write(3)
    with transaction.atomic(), triggers_dropped():
        _sql(f"UPDATE {TABLE} SET actor_name = 'mallory' WHERE seq = 2")
    env = {**os.environ, "DATABASE_URL": subprocess_database_url()}
    run = subprocess.run([sys.executable, "manage.py", "verify_audit", "--skip-checks"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "#2 does not match its hash" in run.stderr
    call_command("flush", interactive=False)  # the delete guard lets flush through
    assert not AuditEvent.objects.exists()
    head = AuditChainHead.objects.get()  # an empty log's head, as migrate leaves it
    assert (head.seq, head.hash) == (0, audit.GENESIS) and audit.verify().ok


def _manage(argv: list[str], **how: Any) -> subprocess.CompletedProcess[Any]:
    """A manage.py command in a process of its own, on the test's database."""
    return subprocess.run([sys.executable, "manage.py", *argv, "--skip-checks"], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": subprocess_database_url()},
                          timeout=60, **how)


def _on_a_terminal(argv: list[str]) -> tuple[subprocess.CompletedProcess[Any], str]:
    """The command with its stderr on a pseudo-terminal, as an operator's shell gives it: its
    exit, and what the terminal showed."""
    leader, follower = pty.openpty()
    try:
        run = _manage(argv, stdout=subprocess.PIPE, stderr=follower)
    finally:
        os.close(follower)
    shown = b""
    with suppress(OSError):  # EIO: the command's end is closed and all it wrote was read
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    return run, shown.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("command", "line"), [
    (["verify_audit"], r"^\rverified 5,000 of 6,000 entries \(83%\), (about \d+ s|less than "
                       r"a second) left\rverified 6,000 of 6,000 entries *\r *\r$"),
    (["prune_audit", "--before", "2100-01-01"], r"^\rremoved 6,000 of 6,000 entries\r *\r$"),
])
def test_the_operations_commands_show_progress_on_a_terminal_only(
    command: list[str], line: str,
) -> None:
    AuditEvent.objects.append([
        AuditEvent.objects.entry("profile.changed", audit.Context(), target_type="profile",
                                 target_name=f"orders-{n}", outcome="succeeded")
        for n in range(6000)])
    run, shown = _on_a_terminal(command)
    assert run.returncode == 0, shown
    assert re.search(line, shown), repr(shown)  # the line is rewritten, then cleared
    assert run.stdout.startswith((b"audit chain intact", b"removed"))
    # A cron job's log or a pipe: only what the command has to say.
    quiet = _manage(command, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain() -> None:
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                AuditEvent.objects.record("job.finished", audit.Context(), target_type="stream",
                                          target_name=f"w{n}-{i}", outcome="succeeded",
                                          actor_name=f"w{n}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    assert errors == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, threads * per_thread + 1))
    assert AuditEvent.objects.values("prev_hash").distinct().count() == threads * per_thread
    result = audit.verify()
    assert result.ok and result.checked == threads * per_thread
