"""Four-eyes changes: held jobs, their approvals, and the team webhooks told of them. A job
enters the queue when it is made or when its approval lets it go (queued_at); existing jobs
entered it when they were made."""

import django.db.models.deletion
import django.utils.timezone
import streams.crypto
from django.conf import settings
from django.db import migrations, models


def queued_when_made(apps, schema_editor):
    Job = apps.get_model("streams", "Job")
    Job.objects.update(queued_at=models.F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0017_teams'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='queued_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunPython(queued_when_made, migrations.RunPython.noop),
        migrations.AddField(
            model_name='profile',
            name='requires_approval',
            field=models.BooleanField(default=False, help_text='Every change (streams, consumers, messages, definitions, plans) waits until another operator or admin of the team approves it; nobody approves their own.', verbose_name='Changes need approval'),
        ),
        migrations.AddField(
            model_name='team',
            name='webhook_secret',
            field=streams.crypto.EncryptedTextField(blank=True, verbose_name='Webhook secret'),
        ),
        migrations.AddField(
            model_name='team',
            name='webhook_url',
            field=models.URLField(blank=True, max_length=500, verbose_name='Webhook URL'),
        ),
        migrations.AlterField(
            model_name='job',
            name='status',
            field=models.CharField(choices=[('held', 'Awaiting approval'), ('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], db_index=True, default='queued', max_length=16),
        ),
        migrations.CreateModel(
            name='Approval',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Awaiting approval'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('expired', 'Expired')], db_index=True, default='pending', max_length=16)),
                ('expires_at', models.DateTimeField()),
                ('sighting', models.JSONField(blank=True, null=True)),
                ('decided_by_name', models.CharField(blank=True, max_length=150)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('comment', models.TextField(blank=True)),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('job', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='approval', to='streams.job')),
            ],
            options={
                'ordering': ['-job__created_at'],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(max_length=64)),
                ('payload', models.JSONField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.TextField(blank=True)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='streams.team')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
    ]
