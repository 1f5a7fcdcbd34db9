"""Four-eyes changes on a real server with a real worker: a change on a profile that requires
approval runs only once another operator or admin of its team approves it, as the requester's
job; nobody approves their own; a rejected or expired request never runs; two approvers at
once run it once; a stream changed since the request is shown again, never approved blind."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from streams import approvals
from streams.models import (
    Approval,
    ApprovalStatus,
    AuditEvent,
    Job,
    JobKind,
    JobStatus,
    Membership,
    Profile,
    Role,
    Stream,
    Team,
    WebhookDelivery,
)
from tests.support.jobs import job_from, wait_for_job
from tests.support.nats_server import NatsServer
from tests.support.raw_jetstream import api
from tests.support.stream_forms import SEED_FORM
from tests.support.teams import logged_in, member
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


class Team4:
    def __init__(self, server: NatsServer, make_profile: Callable[..., Profile]) -> None:
        self.team = Team.objects.create(name="payments")
        self.profile = make_profile(server, name="prod", team=self.team, requires_approval=True,
                                    last_server_version=server.version)
        self.requester = member(self.team, "rita", Role.OPERATOR)
        self.approver = member(self.team, "arno", Role.ADMIN)
        self.viewer = member(self.team, "vera", Role.VIEWER)
        for user in (self.requester, self.approver, self.viewer):
            user.email = f"{user.username}@example.com"
            user.save()
        self.server = server

    def request_create(self, name: str) -> Job:
        response = logged_in(self.requester).post(
            reverse("stream_create", args=[self.profile.pk]),
            {**SEED_FORM, "name": name, "subjects": f"{name}.>"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        job = job_from(response)
        assert "see the request" in response.content.decode()
        return job

    def on_server(self, name: str) -> bool:
        return "error" not in api(self.server.url, f"STREAM.INFO.{name}")


@pytest.fixture
def four(nats_server: NatsServer, make_profile: Callable[..., Profile]) -> Team4:
    return Team4(nats_server, make_profile)


def decide(client: Client, job: Job, decision: str, comment: str = "") -> Any:
    page = client.get(reverse("approval_detail", args=[job.pk])).content.decode()
    seen = page.split('name="seen" value="')[1].split('"')[0]
    return client.post(reverse("approval_decide", args=[job.pk]),
                       {"decision": decision, "comment": comment, "seen": seen})


def test_a_change_runs_only_after_another_member_approves_it(four: Team4) -> None:
    api(four.server.url, "STREAM.DELETE.held_orders")
    job = four.request_create("held_orders")
    assert job.status == JobStatus.HELD
    assert not four.on_server("held_orders")
    assert [m.to for m in mail.outbox] == [["arno@example.com"]]  # an operator or admin, not rita

    # The requester cannot approve their own; a viewer cannot decide at all.
    mine = logged_in(four.requester)
    assert "Nobody approves or rejects their own request" in mine.get(
        reverse("approval_detail", args=[job.pk])).content.decode()
    assert mine.post(reverse("approval_decide", args=[job.pk]),
                     {"decision": "approve", "seen": "x"}).status_code == 403
    assert logged_in(four.viewer).post(reverse("approval_decide", args=[job.pk]),
                                       {"decision": "approve", "seen": "x"}).status_code == 403
    assert AuditEvent.objects.filter(action="permission.denied").count() == 2
    assert Job.objects.get(pk=job.pk).status == JobStatus.HELD

    assert decide(logged_in(four.approver), job, "approve", "looks right").status_code == 302
    job = wait_for_job(job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert four.on_server("held_orders")
    assert job.actor == four.requester  # it ran as the requester's job
    entries = {e.action: e for e in AuditEvent.objects.filter(job=job)}
    assert {"job.requested", "approval.requested", "approval.approved", "stream.created",
            "job.finished"} <= set(entries)
    assert entries["approval.approved"].actor_name == "arno"
    assert entries["approval.approved"].after == {"requested_by": "rita",
                                                  "comment": "looks right"}
    assert entries["job.finished"].message.endswith("(approved by arno)")
    assert mail.outbox[-1].to == ["rita@example.com"]
    assert "was approved by arno: looks right" in mail.outbox[-1].body


def test_a_rejected_request_never_runs(four: Team4) -> None:
    api(four.server.url, "STREAM.DELETE.rejected_orders")
    job = four.request_create("rejected_orders")
    assert decide(logged_in(four.approver), job, "reject", "not today").status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == "rejected by arno: not today"
    assert not four.on_server("rejected_orders")
    assert AuditEvent.objects.get(action="approval.rejected").actor_name == "arno"
    again = logged_in(four.approver).post(reverse("approval_decide", args=[job.pk]),
                                          {"decision": "approve", "seen": "x"})
    assert again.status_code == 409 and "was rejected by arno meanwhile" in again.content.decode()


def test_two_approvers_at_once_run_the_change_once(four: Team4) -> None:
    api(four.server.url, "STREAM.DELETE.twice_orders")
    second = member(four.team, "otto", Role.OPERATOR)
    job = four.request_create("twice_orders")
    clients = [logged_in(four.approver), logged_in(second)]
    seen = clients[0].get(reverse("approval_detail", args=[job.pk])).content.decode().split(
        'name="seen" value="')[1].split('"')[0]
    start = threading.Barrier(2)
    codes: list[int] = []

    def approve(client: Client) -> None:
        start.wait()
        codes.append(client.post(reverse("approval_decide", args=[job.pk]),
                                 {"decision": "approve", "seen": seen}).status_code)
        connection.close()

    threads = [threading.Thread(target=approve, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(codes) == [302, 409]
    assert wait_for_job(job.pk).status == JobStatus.SUCCEEDED
    assert AuditEvent.objects.filter(action="approval.approved").count() == 1
    assert AuditEvent.objects.filter(action="stream.created", target_name="twice_orders"
                                     ).count() == 1


def test_a_request_nobody_decides_expires(four: Team4) -> None:
    job = four.request_create("expiring_orders")
    Approval.objects.filter(job=job).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert approvals.expire_due() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == "expired: nobody approved it within 24 h"
    assert Approval.objects.get(job=job).status == ApprovalStatus.EXPIRED
    assert AuditEvent.objects.get(action="approval.expired").target_name == "expiring_orders"
    assert not four.on_server("expiring_orders")


def test_a_stream_changed_since_the_request_is_shown_before_it_is_approved(four: Team4) -> None:
    api(four.server.url, "STREAM.DELETE.moving")
    four.profile.requires_approval = False
    four.profile.save()
    created = logged_in(four.requester).post(reverse("stream_create", args=[four.profile.pk]),
                                             {**SEED_FORM, "name": "moving",
                                              "subjects": "moving.>"}, HTTP_HX_REQUEST="true")
    assert wait_for_job(job_from(created).pk).status == JobStatus.SUCCEEDED
    four.profile.requires_approval = True
    four.profile.save()
    requester = logged_in(four.requester)
    url = reverse("stream_purge", args=[four.profile.pk, "moving"])
    seen = requester.get(url).content.decode().split('name="seen" value="')[1].split('"')[0]
    assert requester.post(url, {"mode": "all", "seen": seen},
                          HTTP_HX_REQUEST="true").status_code == 200
    job = Job.objects.get(kind=JobKind.STREAM_PURGE, target="moving")
    assert job.status == JobStatus.HELD
    approver = logged_in(four.approver)
    page = approver.get(reverse("approval_detail", args=[job.pk])).content.decode()
    stale_seen = page.split('name="seen" value="')[1].split('"')[0]
    # The stream changes (read again after someone else's edit) before the approver decides.
    row = Stream.objects.get(profile=four.profile, name="moving")
    row.info = {**row.info, "config": {**row.info["config"], "max_msgs": 5}}
    row.save()
    page = approver.get(reverse("approval_detail", args=[job.pk])).content.decode()
    assert "The stream changed since this was requested" in page
    refused = approver.post(reverse("approval_decide", args=[job.pk]),
                            {"decision": "approve", "seen": stale_seen})
    assert refused.status_code == 409 and "changed since this page showed it" in \
        refused.content.decode()
    assert Job.objects.get(pk=job.pk).status == JobStatus.HELD
    assert decide(approver, job, "approve").status_code == 302


def test_a_requester_who_lost_the_role_before_the_approval_has_nothing_run(
    four: Team4,
) -> None:
    api(four.server.url, "STREAM.DELETE.revoked_orders")
    job = four.request_create("revoked_orders")
    Membership.objects.filter(user=four.requester).update(role=Role.VIEWER)
    assert decide(logged_in(four.approver), job, "approve").status_code == 302
    job = wait_for_job(job.pk)
    assert job.status == JobStatus.FAILED and job.error.startswith("permission revoked")
    assert not four.on_server("revoked_orders")


def test_the_list_and_the_profile_page_show_what_waits(four: Team4) -> None:
    job = four.request_create("listed_orders")
    listed = logged_in(four.approver).get(reverse("approval_list")).content.decode()
    waiting = listed.split("Waiting for you")[1].split("Your requests")[0]
    assert f'href="/approvals/{job.pk}/"' in waiting
    mine = logged_in(four.requester).get(reverse("approval_list")).content.decode()
    assert f'href="/approvals/{job.pk}/"' in mine.split("Your requests")[1].split("Decided")[0]
    profile_page = logged_in(four.viewer).get(reverse("profile_detail",
                                                      args=[four.profile.pk])).content.decode()
    assert "Waiting for approval" in profile_page and "listed_orders" in profile_page


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on loopback that fails its first request, then takes them."""

    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.failures = 1
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failures:
                    receiver.failures -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_the_teams_webhook_hears_of_a_request_signed_and_retried(four: Team4) -> None:
    receiver = Receiver()
    secret = "a-webhook-secret-of-32-characters"
    admin = logged_in(four.approver)
    url = reverse("team_webhook", args=[four.team.pk])
    bad = admin.post(url, {"url": "ftp://127.0.0.1/hook", "secret": "short"})
    assert bad.status_code == 400
    assert "Enter a valid URL" in bad.content.decode()
    assert "Use at least 16 characters" in bad.content.decode()
    hook = f"http://127.0.0.1:{receiver.server_port}/hook"
    assert admin.post(url, {"url": hook, "secret": secret}).status_code == 302
    page = admin.get(reverse("team_detail", args=[four.team.pk])).content.decode()
    assert secret not in page and "Set — leave blank to keep" in page
    entry = AuditEvent.objects.get(action="team.webhook_changed")
    assert entry.after == {"url": hook, "secret": "changed"} and secret not in str(entry.after)

    job = four.request_create("hooked_orders")
    delivery = wait_until(lambda: WebhookDelivery.objects.filter(
        event="approval.requested", delivered_at__isnull=False).first(), 20,
        lambda: str(list(WebhookDelivery.objects.values())))
    assert delivery.attempts == 2  # the receiver failed once: the task tried again
    headers, body = receiver.bodies[0]
    assert headers["X-Memphisadmin-Signature"] == "sha256=" + hmac.new(
        secret.encode(), body, hashlib.sha256).hexdigest()
    event = json.loads(body)
    assert (event["event"], event["request"], event["target"], event["requested_by"]) == (
        "approval.requested", job.pk, "hooked_orders", "rita")
    receiver.shutdown()
