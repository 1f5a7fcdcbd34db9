"""Plans as the screens make them (a view that redirects to one, and an audit entry's "Restore
this version" button), and applied as their page's Apply does."""

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


def apply(client: Client, plan: Plan, timeout: float = 60, **data: str) -> Plan:
    """The plan once its Apply (with `data`: a deletion's confirmation) ran and succeeded."""
    response = client.post(reverse("plan_apply", args=[plan.pk]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    plan.refresh_from_db()
    assert plan.apply_job_id, response.content.decode()[:2000]
    job = wait_for_job(plan.apply_job_id, timeout=timeout)
    assert job.status == JobStatus.SUCCEEDED, job.error
    plan.refresh_from_db()
    return plan
