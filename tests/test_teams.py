"""Teams and roles: every role × every route acting on a connection × own team, another team,
a read-only profile and one whose changes need approval, against this table (not against
streams.policy, which it checks). A route added without a row here fails
test_every_route_has_a_row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from streams import audit
from streams.models import (
    Approval,
    AuditEvent,
    Consumer,
    Job,
    JobKind,
    JobStatus,
    Membership,
    Plan,
    Profile,
    RefusalBurst,
    Role,
    Stream,
    StreamDefinition,
    Team,
)
from tests.support.hostile import FUZZ, VALUES
from tests.support.jobs import wait_for_job

pytestmark = pytest.mark.django_db

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
RANK = {VIEWER: 0, OPERATOR: 1, ADMIN: 2}
CONFIG = {"name": "s1", "subjects": ["s1.>"], "storage": "file", "num_replicas": 1}

# route: (method, the least role that may, whether it changes the broker or the definitions:
# refused on a read-only profile, whoever asks). A GET of a form page is asked as its POST is.
ROUTES: dict[str, tuple[str, str, bool]] = {
    "profile_detail": ("get", VIEWER, False),
    "profile_edit": ("get", ADMIN, False),
    "profile_delete": ("get", ADMIN, False),
    "profile_test": ("post", OPERATOR, False),
    "profile_capture": ("post", ADMIN, False),
    "stream_list": ("get", VIEWER, False),
    "stream_list_refresh": ("post", VIEWER, False),
    "stream_list_read": ("post", VIEWER, False),
    "stream_adopt": ("post", OPERATOR, True),
    "plan_create": ("post", OPERATOR, False),
    "stream_create": ("get", OPERATOR, True),
    "definitions_export": ("post", VIEWER, False),
    "definitions_import": ("get", OPERATOR, True),
    "definitions_copy": ("get", VIEWER, False),
    "stream_detail": ("get", VIEWER, False),
    "stream_refresh": ("post", VIEWER, False),
    "stream_read": ("post", VIEWER, False),
    "stream_edit": ("get", OPERATOR, True),
    "stream_delete": ("get", ADMIN, True),
    "stream_purge": ("get", OPERATOR, True),
    "message_list": ("get", VIEWER, False),
    "message_detail": ("get", VIEWER, False),
    "message_browse": ("post", VIEWER, False),
    "message_results": ("get", VIEWER, False),
    "message_delete": ("post", OPERATOR, True),
    "message_publish": ("get", OPERATOR, True),
    "message_download": ("post", VIEWER, False),
    "consumer_create": ("get", OPERATOR, True),
    "consumer_edit": ("get", OPERATOR, True),
    "consumer_delete": ("get", ADMIN, True),
    "consumer_pause": ("get", OPERATOR, True),
    "consumer_resume": ("post", OPERATOR, True),
    "stream_plan": ("post", OPERATOR, False),
    "plan_detail": ("get", VIEWER, False),
    "plan_apply": ("post", OPERATOR, True),
    "profile_audit": ("get", VIEWER, False),
    "stream_audit": ("get", VIEWER, False),
    "audit_detail": ("get", VIEWER, False),
    "audit_restore": ("post", OPERATOR, False),
    "approval_detail": ("get", VIEWER, False),
    "approval_decide": ("post", OPERATOR, False),
    # Whoever may run the job may stop it; stopping changes nothing more, read-only or not.
    "job_cancel": ("post", OPERATOR, False),
}
# Routes about no one connection, each tested below on its own; and Django's.
OTHER_ROUTES = {"home", "login", "logout", "healthz", "metrics", "password_change",
                "password_changed", "profile_list", "profile_create", "job_list", "job_detail",
                "audit_list", "audit_export", "team_list", "team_create", "team_detail",
                "team_member_add", "team_member_role", "team_member_remove", "team_webhook",
                "approval_list"}


def test_every_route_has_a_row() -> None:
    names = {getattr(pattern, "name", None) for pattern in get_resolver().url_patterns} - {None}
    assert names - set(ROUTES) - OTHER_ROUTES == set()


class World:
    """Team "ours" with a writable and a read-only profile, team "theirs" with one; in each a
    stream with a definition, a consumer, a plan, a job and an audit entry to restore."""

    def __init__(self) -> None:
        users = get_user_model().objects
        self.ours, self.theirs = Team.objects.create(name="ours"), Team.objects.create(
            name="theirs")
        self.users = {role: users.create_user(role, password="pass-word-1") for role in RANK}
        for role, user in self.users.items():
            Membership.objects.create(team=self.ours, user=user, role=role)
        self.users["superuser"] = users.create_superuser("root", "", "pass-word-1")
        self.users["outsider"] = users.create_user("outsider", password="pass-word-1")
        self.profiles = {
            "own": self.profile("own", self.ours),
            "read-only": self.profile("frozen", self.ours, read_only=True),
            "approval": self.profile("gated", self.ours, requires_approval=True),
            "other": self.profile("other", self.theirs),
        }

    def profile(self, name: str, team: Team, **fields: Any) -> Profile:
        profile = Profile.objects.create(name=name, servers="nats://127.0.0.1:4222", team=team,
                                         last_server_version="2.11.0", **fields)
        Stream.objects.create(profile=profile, name="s1", info={"config": CONFIG},
                              read_at=timezone.now(), subjects=["s1.>"])
        StreamDefinition.objects.create(profile=profile, name="s1", config=CONFIG)
        Consumer.objects.create(profile=profile, stream_name="s1", name="c1", durable=True,
                                read_at=timezone.now(), info={"config": {
                                    "durable_name": "c1", "ack_policy": "explicit"}})
        profile.plan = Plan.objects.create(profile=profile, desired={"s1": CONFIG},
                                           origin="test", steps=[])
        # A change someone else asked for, waiting for an approval.
        profile.held = Job.objects.create(kind=JobKind.STREAM_PURGE, profile=profile,
                                          profile_name=profile.name, target="s1",
                                          status=JobStatus.HELD)
        Approval.objects.create(job=profile.held, expires_at=timezone.now() + timedelta(hours=1))
        profile.entry = AuditEvent.objects.record(
            "stream.changed", audit.Context(), target_type="stream", target_name="s1",
            profile=profile, outcome="succeeded", before=CONFIG, after=CONFIG)
        return profile

    def url(self, route: str, profile: Profile, user: Any) -> str:
        args: list[Any] = [profile.pk]
        if route.startswith(("stream_", "message_", "consumer_")) and route not in (
                "stream_list", "stream_list_refresh", "stream_list_read", "stream_adopt",
                "stream_create"):
            args.append("s1")
        if route.startswith("consumer_") and route != "consumer_create":
            args.append("c1")
        if route == "message_detail":
            args.append(1)
        if route in ("plan_detail", "plan_apply"):
            args = [profile.plan.pk]
        if route in ("audit_detail", "audit_restore"):
            args = [profile.entry.seq]
        if route.startswith("approval_"):
            args = [profile.held.pk]
        if route == "job_cancel":  # an apply someone else asked for, running
            args = [Job.objects.create(kind=JobKind.STREAM_APPLY, profile=profile,
                                       profile_name=profile.name, target=profile.name,
                                       status=JobStatus.RUNNING,
                                       params={"plan": profile.plan.pk}).pk]
        url = reverse(route, args=args)
        if route == "message_results":  # the user's own browse
            job = Job.objects.create(kind=JobKind.MESSAGE_LIST, profile=profile,
                                     profile_name=profile.name, target="s1", actor=user,
                                     status=JobStatus.SUCCEEDED,
                                     result={"messages": [], "first_seq": 1, "last_seq": 0,
                                             "start": 1})
            url += f"?job={job.pk}"
        return url


def expected(who: str, scenario: str, least: str, changes: bool) -> int | None:
    """None: allowed; else the refusal's status."""
    if who == "outsider" or (scenario == "other" and who != "superuser"):
        return 404  # another team's connection looks like a missing one
    if changes and scenario == "read-only":
        return 403
    if who == "superuser" or RANK[who] >= RANK[least]:
        return None
    return 403


@pytest.fixture
def world(settings: Any, redis_server: Any) -> World:
    settings.JOB_WAIT = 0  # a job a request submits waits in Redis: no worker here
    return World()


@pytest.mark.parametrize("who", [VIEWER, OPERATOR, ADMIN, "superuser", "outsider"])
def test_every_role_on_every_route(world: World, who: str) -> None:
    client = Client()
    user = world.users[who]
    client.force_login(user)
    wrong = []
    for scenario, profile in world.profiles.items():
        for route, (method, least, changes) in ROUTES.items():
            RefusalBurst.objects.all().delete()  # each refusal is the first of its burst
            denied = AuditEvent.objects.filter(action="permission.denied").count()
            response = getattr(client, method)(world.url(route, profile, user))
            want = expected(who, scenario, least, changes)
            got = response.status_code
            recorded = AuditEvent.objects.filter(action="permission.denied").count() - denied
            if want is None and (got in (403, 404) or got >= 500):
                wrong.append(f"{scenario} {route}: allowed, got {got}")
            elif want is not None and got != want:
                wrong.append(f"{scenario} {route}: wanted {want}, got {got}")
            elif (want == 403 or want == 404 and method == "post") and recorded != 1:
                wrong.append(f"{scenario} {route}: refused with {recorded} audit entries")
    assert wrong == []


def test_lists_show_only_the_teams_objects(world: World) -> None:
    client = Client()
    client.force_login(world.users[VIEWER])
    for profile in world.profiles.values():
        Job.objects.create(kind=JobKind.STREAM_LIST, profile=profile, profile_name=profile.name,
                           target=f"job-of-{profile.name}")
    page = client.get(reverse("profile_list")).content.decode()
    assert ">own<" in page and ">frozen<" in page and ">other<" not in page
    jobs = client.get(reverse("job_list")).content.decode()
    assert "job-of-own" in jobs and "job-of-other" not in jobs
    other_job = Job.objects.get(target="job-of-other")
    assert client.get(reverse("job_detail", args=[other_job.pk])).status_code == 404
    log = client.get(reverse("audit_list")).content.decode()
    assert "profile=own" in log or ">own<" in log
    assert ">other<" not in log
    export = b"".join(client.get(reverse("audit_export", args=["jsonl"])).streaming_content)
    assert b'"own"' in export and b'"other"' not in export


def test_a_refused_burst_writes_a_bounded_number_of_entries(world: World,
                                                           settings: Any) -> None:
    client = Client()
    client.force_login(world.users[VIEWER])
    url = reverse("stream_delete", args=[world.profiles["own"].pk, "s1"])
    for _ in range(50):
        assert client.post(url).status_code == 403
    entries = AuditEvent.objects.filter(action="permission.denied")
    assert entries.count() == 2  # the first, and the count at LOGIN_FAILURE_LIMIT
    assert entries.order_by("seq").last().after["refusals"] == settings.LOGIN_FAILURE_LIMIT


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_requester_lost_the_role_fails_when_it_runs(
    world: World, celery_worker: Any,
) -> None:
    profile = world.profiles["own"]
    operator = world.users[OPERATOR]
    Membership.objects.filter(user=operator).update(role=Role.VIEWER)
    job = Job.objects.create(kind=JobKind.STREAM_PURGE, profile=profile,
                             profile_name=profile.name, target="s1", actor=operator,
                             params={"stream": "s1"})
    job.enqueue()
    job = wait_for_job(job.pk)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("permission revoked")



def as_user(world: World, who: str) -> Client:
    client = Client()
    client.force_login(world.users[who])
    return client


def test_team_admins_manage_members_and_each_change_is_audited(world: World) -> None:
    admin = as_user(world, ADMIN)
    team = world.ours
    newcomer = get_user_model().objects.create_user("newcomer", password="pass-word-1")
    add = reverse("team_member_add", args=[team.pk])
    assert admin.post(add, {"username": "newcomer", "role": VIEWER}).status_code == 302
    membership = Membership.objects.get(team=team, user=newcomer)
    entry = AuditEvent.objects.get(action="team.member_added")
    assert (entry.target_name, entry.before, entry.after) == (
        "ours", None, {"user": "newcomer", "role": "viewer"})
    assert entry.actor_name == "admin"

    role = reverse("team_member_role", args=[team.pk, membership.pk])
    assert admin.post(role, {"role": OPERATOR, "seen": VIEWER}).status_code == 302
    entry = AuditEvent.objects.get(action="team.role_changed")
    assert (entry.before, entry.after) == ({"user": "newcomer", "role": "viewer"},
                                           {"user": "newcomer", "role": "operator"})
    # A second admin's page still showed "viewer": their change is refused, not applied over.
    stale = admin.post(role, {"role": ADMIN, "seen": VIEWER})
    assert stale.status_code == 409 and "changed meanwhile" in stale.content.decode()
    assert Membership.objects.get(pk=membership.pk).role == OPERATOR

    remove = reverse("team_member_remove", args=[team.pk, membership.pk])
    assert admin.post(remove).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.get(action="team.member_removed").before == {
        "user": "newcomer", "role": "operator"}
    again = admin.post(remove)  # another admin removed them first
    assert again.status_code == 409 and "removed meanwhile" in again.content.decode()


def test_a_team_keeps_an_admin(world: World) -> None:
    admin = as_user(world, ADMIN)
    mine = Membership.objects.get(team=world.ours, user=world.users[ADMIN])
    for url, data in ((reverse("team_member_role", args=[world.ours.pk, mine.pk]),
                       {"role": VIEWER, "seen": ADMIN}),
                      (reverse("team_member_remove", args=[world.ours.pk, mine.pk]), {})):
        response = admin.post(url, data)
        assert response.status_code == 409
        assert "last admin of ours" in response.content.decode()
    assert Membership.objects.get(pk=mine.pk).role == ADMIN


@pytest.mark.parametrize(("data", "message"), [
    ({"username": "nobody", "role": VIEWER}, "No account is named nobody"),
    ({"username": "viewer", "role": VIEWER}, "viewer is a member of ours already"),
    ({"username": "x" * 151, "role": VIEWER}, "at most 150 characters"),
    ({"username": "newcomer", "role": "owner"}, "Select a valid choice"),
    ({"username": "", "role": VIEWER}, "This field is required"),
])
def test_a_bad_member_is_refused_beside_its_field(world: World, data: dict[str, str],
                                                 message: str) -> None:
    get_user_model().objects.create_user("newcomer", password="pass-word-1")
    response = as_user(world, ADMIN).post(reverse("team_member_add", args=[world.ours.pk]),
                                          data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Membership.objects.filter(team=world.ours).count() == 3


def test_only_team_admins_manage_members_and_others_teams_stay_hidden(world: World) -> None:
    operator = as_user(world, OPERATOR)
    add = reverse("team_member_add", args=[world.ours.pk])
    assert operator.post(add, {"username": "outsider", "role": ADMIN}).status_code == 403
    assert AuditEvent.objects.filter(action="permission.denied", actor_name="operator").exists()
    assert operator.get(reverse("team_detail", args=[world.ours.pk])).status_code == 200
    assert operator.get(reverse("team_detail", args=[world.theirs.pk])).status_code == 404
    theirs = reverse("team_member_add", args=[world.theirs.pk])
    assert as_user(world, ADMIN).post(theirs, {"username": "outsider",
                                               "role": ADMIN}).status_code == 404
    teams = operator.get(reverse("team_list")).content.decode()
    assert ">ours<" in teams and ">theirs<" not in teams
    assert not Membership.objects.filter(user=world.users["outsider"]).exists()


def test_a_profile_is_made_and_moved_only_into_a_team_its_maker_administers(
    world: World,
) -> None:
    data = {"name": "made", "servers": "nats://127.0.0.1:4222", "broker_kind": "nats",
            "connect_timeout": "2", "auth_method": "none"}
    operator = as_user(world, OPERATOR)
    assert operator.get(reverse("profile_create")).status_code == 403
    admin = as_user(world, ADMIN)
    refused = admin.post(reverse("profile_create"), {**data, "team": world.theirs.pk})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert admin.post(reverse("profile_create"), {**data, "team": world.ours.pk}
                      ).status_code == 302
    assert Profile.objects.get(name="made").team == world.ours


def test_a_user_changes_their_own_password(world: World) -> None:
    client = as_user(world, VIEWER)
    weak = client.post(reverse("password_change"), {
        "old_password": "pass-word-1", "new_password1": "12345678",
        "new_password2": "12345678"})
    assert weak.status_code == 200 and "too common" in weak.content.decode()
    done = client.post(reverse("password_change"), {
        "old_password": "pass-word-1", "new_password1": "a-Longer-pass-4417",
        "new_password2": "a-Longer-pass-4417"})
    assert done.status_code == 302
    assert get_user_model().objects.get(username="viewer").check_password("a-Longer-pass-4417")
    assert AuditEvent.objects.get(action="user.password_changed").actor_name == "viewer"


def test_an_idle_session_is_logged_out(world: World, settings: Any) -> None:
    client = as_user(world, VIEWER)
    assert client.get(reverse("profile_list")).status_code == 200
    session = client.session
    session["active_at"] -= settings.SESSION_IDLE_MINUTES * 60 + 1
    session.save()
    response = client.get(reverse("profile_list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# The team and approval endpoints, with what each reads from the request.
TEAM_ENDPOINTS = {
    "team_create": ["name"],
    "team_member_add": ["username", "role"],
    "team_member_role": ["role", "seen"],
    "team_member_remove": [],
    "team_webhook": ["url", "secret"],
    "approval_decide": ["decision", "comment", "seen"],
}


@pytest.mark.parametrize("endpoint", list(TEAM_ENDPOINTS))
@examples(FUZZ, max_examples=40)
@given(data=st.data())
def test_team_and_approval_posts_never_give_a_server_error(
    world: World, endpoint: str, data: st.DataObject,
) -> None:
    team, profile = world.ours, world.profiles["approval"]
    mine = Membership.objects.filter(team=team, user=world.users[VIEWER]).first()
    args = {"team_create": [], "approval_decide": [profile.held.pk],
            "team_member_role": [team.pk, mine.pk if mine else 0],
            "team_member_remove": [team.pk, mine.pk if mine else 0]}.get(endpoint, [team.pk])
    body = data.draw(st.fixed_dictionaries({}, optional={
        name: st.one_of(VALUES, st.lists(VALUES, max_size=3))
        for name in TEAM_ENDPOINTS[endpoint]}))
    client = as_user(world, "superuser")
    for htmx in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.post(reverse(endpoint, args=args), body, **htmx)
        assert response.status_code < 500, (endpoint, body, response.status_code)
    # Whatever was sent, the team keeps an admin and every role is one of the three.
    assert Membership.objects.filter(team=team, role=ADMIN).exists()
    assert set(Membership.objects.values_list("role", flat=True)) <= set(RANK)
