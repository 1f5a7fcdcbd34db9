# Audit chain head: a MAC over (seq, hash, at), a row that always exists (so that a missing one
# means it was removed), and database triggers that refuse to move it back or delete it.

from django.db import migrations, models

GATE = "streams_audit_gate"
HEAD = "streams_auditchainhead"

# Like 0003's guard: UPDATE may only move the head forward (every append does); DELETE, and on
# PostgreSQL TRUNCATE (which skips row triggers), need the gate that prune and flush open. NOTE
# for later migrations: on SQLite, altering the head table rebuilds it and drops these triggers;
# re-run create_guards afterwards (tests/test_audit_integrity.py checks they exist).
SQLITE = [
    f"CREATE TRIGGER {HEAD}_no_rewind BEFORE UPDATE ON {HEAD} WHEN NEW.seq < OLD.seq "
    "BEGIN SELECT RAISE(ABORT, 'the audit chain head cannot move backwards'); END",
    f"CREATE TRIGGER {HEAD}_no_delete BEFORE DELETE ON {HEAD} "
    f"WHEN NOT EXISTS (SELECT 1 FROM {GATE}) "
    "BEGIN SELECT RAISE(ABORT, 'the audit chain head cannot be removed'); END",
]
POSTGRESQL = [
    f"""CREATE FUNCTION streams_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF NEW.seq < OLD.seq THEN
                RAISE EXCEPTION 'the audit chain head cannot move backwards';
            END IF;
            RETURN NEW;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM {GATE}) THEN
            RAISE EXCEPTION 'the audit chain head cannot be removed';
        END IF;
        RETURN OLD;
    END $$""",
    f"CREATE TRIGGER {HEAD}_guard BEFORE UPDATE OR DELETE ON {HEAD} "
    "FOR EACH ROW EXECUTE FUNCTION streams_audit_head_guard()",
    f"CREATE TRIGGER {HEAD}_no_truncate BEFORE TRUNCATE ON {HEAD} "
    "FOR EACH STATEMENT EXECUTE FUNCTION streams_audit_head_guard()",
]


def create_guards(apps, schema_editor):
    statements = {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(schema_editor.connection.vendor)
    for sql in statements or ():
        schema_editor.execute(sql)


def drop_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {HEAD}_no_rewind")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {HEAD}_no_delete")
    elif vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {HEAD}_guard ON {HEAD}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {HEAD}_no_truncate ON {HEAD}")
        schema_editor.execute("DROP FUNCTION IF EXISTS streams_audit_head_guard()")


def seal_head(apps, schema_editor):
    """Seal the existing head as it stands; create it where there is none yet (an empty log, or
    one whose first writer has not run), continuing from what is there as writers used to."""
    from streams.seal import GENESIS, head_mac

    db = schema_editor.connection.alias
    AuditChainHead = apps.get_model("streams", "AuditChainHead")
    AuditEvent = apps.get_model("streams", "AuditEvent")
    AuditCheckpoint = apps.get_model("streams", "AuditCheckpoint")
    head = AuditChainHead.objects.using(db).filter(pk=1).first()
    if head is None:
        newest = (AuditEvent.objects.using(db).order_by("-seq")
                  .values_list("seq", "hash", "at").first())
        checkpoint = (AuditCheckpoint.objects.using(db).order_by("-seq")
                      .values_list("seq", "hash").first())
        seq, last_hash, at = newest or (*(checkpoint or (0, GENESIS)), None)
        head = AuditChainHead(pk=1, seq=seq, hash=last_hash, at=at)
    head.mac = head_mac(head.seq, head.hash, head.at)
    head.save(using=db)


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0004_job_request_context'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditchainhead',
            name='mac',
            field=models.CharField(default='', max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(seal_head, migrations.RunPython.noop, elidable=False),
        # Last: on SQLite the AddField above rebuilt the table, which drops a table's triggers.
        migrations.RunPython(create_guards, drop_guards, elidable=False),
    ]
