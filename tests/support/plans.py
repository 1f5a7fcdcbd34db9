"""Plans as the screens make them: a view that redirects to one, and an audit entry's
"Restore this version" button."""

from __future__ import annotations

from django.http import HttpResponse
from django.test import Client
from django.urls import resolve, reverse

from streams.models import JobStatus, Plan
from tests.support.jobs import wait_for_job


def planned(response: HttpResponse) -> Plan:
    """The plan a view redirected to, once its job has worked out the steps."""
    assert response.status_code == 302, response.content.decode()[:3000]
    plan = Plan.objects.get(pk=resolve(response["Location"]).kwargs["pk"])
    job = wait_for_job(plan.plan_job_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    plan.refresh_from_db()
    return plan


def restored(client: Client, seq: int) -> Plan:
    """The plan the entry's Restore button makes; the entry's page must offer the button."""
    page = client.get(reverse("audit_detail", args=[seq])).content.decode()
    assert "Restore this version" in page, f"entry #{seq} offers no restore"
    return planned(client.post(reverse("audit_restore", args=[seq])))
