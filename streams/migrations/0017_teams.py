"""Teams. Existing profiles join the Default team; each existing account that held the app's
Django permissions becomes its member with the role they amounted to (delete → admin,
add or change → operator, view only → viewer). Superusers need no membership."""

import django.db.models.deletion
import streams.models.teams
from django.conf import settings
from django.db import migrations, models


ROLE_BY_PERMISSION = (("admin", ("delete_stream", "delete_profile", "delete_consumer")),
                      ("operator", ("add_stream", "change_stream", "add_consumer",
                                    "change_consumer", "add_streamdefinition")))


def into_teams(apps, schema_editor):
    Team = apps.get_model("streams", "Team")
    Profile = apps.get_model("streams", "Profile")
    Membership = apps.get_model("streams", "Membership")
    Permission = apps.get_model("auth", "Permission")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    team, _ = Team.objects.get_or_create(name="Default")
    Profile.objects.update(team=team)
    for user in User.objects.filter(is_superuser=False, is_active=True):
        held = set(Permission.objects.filter(content_type__app_label="streams").filter(
            models.Q(user=user) | models.Q(group__user=user)).values_list("codename", flat=True))
        if not held:
            continue
        role = next((role for role, codenames in ROLE_BY_PERMISSION if held & set(codenames)),
                    "viewer")
        Membership.objects.create(team=team, user=user, role=role)


class Migration(migrations.Migration):

    dependencies = [
        ('streams', '0016_message_read'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RefusalBurst',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_name', models.CharField(max_length=150)),
                ('ip', models.GenericIPAddressField(null=True)),
                ('started_at', models.DateTimeField()),
                ('last_at', models.DateTimeField(db_index=True)),
                ('count', models.PositiveIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name='Team',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.AddField(
            model_name='profile',
            name='read_only',
            field=models.BooleanField(default=False, help_text='Nothing on this broker is changed from the dashboard, by anyone: no stream, consumer, message or definition. Reads, connection tests and recording changes made outside go on.', verbose_name='Read-only'),
        ),
        migrations.AddField(
            model_name='profile',
            name='team',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='profiles', to='streams.team'),
        ),
        migrations.CreateModel(
            name='Membership',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('viewer', 'Viewer'), ('operator', 'Operator'), ('admin', 'Admin')], max_length=16)),
                ('source', models.CharField(default='local', max_length=16)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='streams.team')),
            ],
            options={
                'ordering': ['team__name', 'user__username'],
                'constraints': [models.UniqueConstraint(fields=('team', 'user'), name='one_membership_per_team')],
            },
        ),
        migrations.RunPython(into_teams, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='profile',
            name='team',
            field=models.ForeignKey(default=streams.models.teams.default_team, on_delete=django.db.models.deletion.PROTECT, related_name='profiles', to='streams.team'),
        ),
    ]
