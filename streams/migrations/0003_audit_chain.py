# Audit log: hash chain (seq, prev_hash, hash), chain head, prune checkpoints, review indexes,
# and database triggers that make the audit tables append-only.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

GATE = "streams_audit_gate"
GUARDED = ("streams_auditevent", "streams_auditcheckpoint")

# The append-only guard, in the database itself so that raw SQL and other programs are refused
# too. UPDATE is always rejected. DELETE is rejected unless the gate table holds a row; the only
# writers of that row are streams.audit.chain.deletion_gate (used by prune_audit and by flush), which
# insert it and remove it again inside one transaction, so no other connection ever sees it
# open. NOTE for later migrations: on SQLite, altering these tables rebuilds them and drops their
# triggers; re-run create_guards afterwards (tests/test_audit_integrity.py checks they exist).
SQLITE = [f"CREATE TABLE {GATE} (open bool NOT NULL)"] + [
    sql
    for table in GUARDED
    for sql in (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"WHEN NOT EXISTS (SELECT 1 FROM {GATE}) "
        f"BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
    )
]
POSTGRESQL = [
    f"CREATE TABLE {GATE} (open boolean NOT NULL)",
    f"""CREATE FUNCTION streams_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' OR NOT EXISTS (SELECT 1 FROM {GATE}) THEN
            RAISE EXCEPTION 'audit entries are append-only';
        END IF;
        RETURN OLD;
    END $$""",
] + [
    sql
    for table in GUARDED
    for sql in (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION streams_audit_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION streams_audit_append_only()",
    )
]


def create_guards(apps, schema_editor):
    statements = {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(schema_editor.connection.vendor)
    for sql in statements or ():
        schema_editor.execute(sql)


def drop_guards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for table in GUARDED:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    elif vendor == "postgresql":
        for table in GUARDED:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        schema_editor.execute("DROP FUNCTION IF EXISTS streams_audit_append_only()")
    if vendor in {"sqlite", "postgresql"}:
        schema_editor.execute(f"DROP TABLE IF EXISTS {GATE}")


def chain_existing(apps, schema_editor):
    """Entries written before the chain existed are chained in the order they were written."""
    from streams.seal import CHAINED_FIELDS, GENESIS, entry_hash

    AuditEvent = apps.get_model("streams", "AuditEvent")
    AuditChainHead = apps.get_model("streams", "AuditChainHead")
    prev, seq, at = GENESIS, 0, None
    for event in AuditEvent.objects.order_by("at", "id").iterator():
        seq += 1
        event.seq, event.prev_hash = seq, prev
        event.hash = entry_hash({name: getattr(event, name) for name in CHAINED_FIELDS}, prev)
        AuditEvent.objects.filter(pk=event.pk).update(seq=seq, prev_hash=prev, hash=event.hash)
        prev, at = event.hash, event.at
    if seq:
        AuditChainHead.objects.create(pk=1, seq=seq, hash=prev, at=at)


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0002_streams'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.PositiveBigIntegerField()),
                ('hash', models.CharField(max_length=64)),
                ('at', models.DateTimeField(null=True)),
            ],
        ),
        migrations.CreateModel(
            name='AuditCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.PositiveBigIntegerField(unique=True)),
                ('hash', models.CharField(max_length=64)),
                ('pruned_before', models.DateTimeField()),
                ('removed', models.PositiveBigIntegerField()),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('mac', models.CharField(max_length=64)),
            ],
            options={
                'ordering': ['-seq'],
            },
        ),
        migrations.AlterModelOptions(
            name='auditevent',
            options={'ordering': ['-seq']},
        ),
        migrations.AddField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(default='', max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(default='', max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='auditevent',
            name='seq',
            field=models.PositiveBigIntegerField(null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='actor',
            field=models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='job',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, to='streams.job'),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='profile',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, to='streams.profile'),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name='auditevent',
            name='seq',
            field=models.PositiveBigIntegerField(unique=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['at', 'seq'], name='audit_at_seq'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['actor_name', 'seq'], name='audit_actor_seq'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action', 'seq'], name='audit_action_seq'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['target_type', 'target_name', 'seq'], name='audit_target_seq'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['profile_name', 'seq'], name='audit_profile_name_seq'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['profile', 'seq'], name='audit_profile_seq'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['outcome', 'seq'], name='audit_outcome_seq'),
        ),
        # Last, after every table rebuild above (a rebuild would drop the triggers).
        migrations.RunPython(create_guards, drop_guards, elidable=False),
    ]
