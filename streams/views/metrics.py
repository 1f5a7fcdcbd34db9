"""/metrics in Prometheus's text format, for whoever holds METRICS_TOKEN (sent as a bearer
token; without the setting the page does not exist): what every process counted
(streams.metrics, prometheus-client's multiprocess mode) and, read as it is scraped, what the
database knows: the audit chain's head and the advisory listener's lag."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from streams.models import Approval, ApprovalStatus, AuditChainHead, WorkerHeartbeat


class FromTheDatabase(Collector):
    def collect(self) -> Iterator[Metric]:
        head = AuditChainHead.objects.values_list("seq", flat=True).first()
        yield GaugeMetricFamily("memphisadmin_audit_head_seq",
                                "The audit chain's newest sequence number", value=head or 0)
        seen = WorkerHeartbeat.objects.filter(name=WorkerHeartbeat.LISTENER).values_list(
            "seen_at", flat=True).first()
        lag = GaugeMetricFamily("memphisadmin_listener_lag_seconds",
                                "Since the advisory listener last read its targets")
        if seen is not None:
            lag.add_metric([], (timezone.now() - seen).total_seconds())
        yield lag
        yield GaugeMetricFamily(
            "memphisadmin_approvals_pending", "Changes waiting for approval",
            value=Approval.objects.filter(status=ApprovalStatus.PENDING).count())


@login_not_required
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404("metrics are off: set METRICS_TOKEN")
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not hmac.compare_digest(sent.encode(), settings.METRICS_TOKEN.encode()):
        response = HttpResponse("a bearer token is needed\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    registry.register(FromTheDatabase())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
