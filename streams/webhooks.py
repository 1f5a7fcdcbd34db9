"""A team's webhook: changes waiting for approval and the decisions on them, POSTed as JSON and
signed with the team's secret (header `X-Memphisadmin-Signature: sha256=<hex HMAC-SHA256 of
the body>`), by a worker task that retries with backoff, never by the request that caused
them. Each event is a WebhookDelivery row, which the team's page lists."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from streams.models import Team, WebhookDelivery

log = logging.getLogger(__name__)

TASK = "streams.deliver_webhook"
ATTEMPTS = 5  # then the delivery stays failed, with its last error, on the team's page
TIMEOUT = 5  # seconds a receiver has to answer one attempt


def announce(team: Team, event: str, payload: dict[str, Any]) -> None:
    """Once the caller's transaction commits, POST this event to the team's webhook, if it has
    one."""
    if not team.webhook_url:
        return
    delivery = WebhookDelivery.objects.create(team=team, event=event, payload=payload)

    def send() -> None:
        try:
            current_app.send_task(TASK, args=[delivery.pk])
        except OperationalError as exc:  # the row says it was never tried
            log.warning("webhook delivery %s not queued: %s", delivery.pk, exc)

    transaction.on_commit(send)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(delivery_id: int) -> bool | None:
    """One attempt: True when the receiver took it (2xx), False when it should be tried again,
    None when there is nothing to send (delivered already, or the webhook was removed)."""
    delivery = (WebhookDelivery.objects.select_related("team")
                .filter(pk=delivery_id, delivered_at=None).first())
    if delivery is None or not delivery.team.webhook_url:
        return None
    team = delivery.team
    body = json.dumps({"event": delivery.event, "team": team.name,
                       "sent_at": timezone.now().isoformat(), **delivery.payload}).encode()
    request = urllib.request.Request(team.webhook_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "memphisadmin",
        "X-Memphisadmin-Event": delivery.event,
        "X-Memphisadmin-Signature": signature(team.webhook_secret, body)})
    error = ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                error = f"the receiver answered {response.status}"
    except urllib.error.HTTPError as exc:
        error = f"the receiver answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # The reason only: the address may hold credentials.
        error = f"not delivered: {type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:300]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=F("attempts") + 1, last_error=error,
        delivered_at=None if error else timezone.now())
    return not error
