# Stream listing rows, stream definitions and the stream job kinds (issue 3).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("streams", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="job",
            name="kind",
            field=models.CharField(choices=[("test_connection", "Test connection"), ("stream_list", "List streams"), ("stream_info", "Read stream"), ("stream_create", "Create stream"), ("stream_update", "Edit stream"), ("stream_delete", "Delete stream"), ("stream_purge", "Purge stream")], max_length=32),
        ),
        migrations.CreateModel(
            name="Stream",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=255)),
                ("status", models.CharField(choices=[("ok", "ok"), ("missing", "missing"), ("offline", "offline")], default="ok", max_length=16)),
                ("status_reason", models.CharField(blank=True, max_length=255)),
                ("system_kind", models.CharField(blank=True, max_length=16)),
                ("subjects", models.JSONField(blank=True, default=list)),
                ("subjects_text", models.TextField(blank=True)),
                ("storage", models.CharField(blank=True, max_length=16)),
                ("replicas", models.PositiveSmallIntegerField(null=True)),
                ("retention", models.CharField(blank=True, max_length=16)),
                ("messages", models.BigIntegerField(null=True)),
                ("bytes", models.BigIntegerField(null=True)),
                ("consumers", models.IntegerField(null=True)),
                ("first_seq", models.BigIntegerField(null=True)),
                ("first_ts", models.DateTimeField(null=True)),
                ("last_seq", models.BigIntegerField(null=True)),
                ("last_ts", models.DateTimeField(null=True)),
                ("info", models.JSONField(blank=True, null=True)),
                ("read_at", models.DateTimeField()),
                ("profile", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="streams", to="streams.profile")),
            ],
            options={
                "ordering": ["name"],
                "constraints": [models.UniqueConstraint(fields=("profile", "name"), name="stream_unique_per_profile")],
            },
        ),
        migrations.CreateModel(
            name="StreamDefinition",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=255)),
                ("config", models.JSONField()),
                ("updated_by", models.CharField(blank=True, max_length=150)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("job", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to="streams.job")),
                ("profile", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="stream_definitions", to="streams.profile")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("profile", "name"), name="stream_definition_unique_per_profile")],
            },
        ),
    ]
