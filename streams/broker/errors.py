"""Broker failures as readable messages that never contain a secret: BrokerError, and the
translation of nats-py's and the operating system's exceptions into it."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import nats.errors
import nats.js.errors

from streams.errors import OperationError

RETRYABLE_ERR_CODES = {10008}  # JetStream temporarily unavailable
NOT_FOUND = 10059
# The form field each JetStream error belongs to.
ERROR_FIELDS = {10058: "name", 10065: "subjects", 10074: "num_replicas", 10005: "num_replicas"}
CONSUMER_NOT_FOUND = 10014
CONSUMER_EXISTS = 10148
# The consumer form's field each consumer error belongs to (nats-server's
# jetstream_errors_generated.go).
CONSUMER_ERROR_FIELDS = {
    10013: "durable_name", 10102: "durable_name", 10103: "durable_name",
    10127: "durable_name", CONSUMER_EXISTS: "durable_name",
    10079: "deliver_subject", 10081: "deliver_subject", 10112: "deliver_subject",
    10080: "max_waiting", 10087: "max_waiting",
    10082: "max_ack_pending", 10121: "max_ack_pending",
    10083: "idle_heartbeat", 10088: "idle_heartbeat",
    10084: "ack_policy", 10098: "ack_policy",
    10086: "rate_limit_bps", 10089: "flow_control", 10108: "flow_control",
    10093: "filter_subjects", 10099: "filter_subjects", 10100: "filter_subjects",
    10136: "filter_subjects", 10137: "filter_subjects", 10138: "filter_subjects",
    10139: "filter_subjects",
    10094: "start_policy", 10101: "start_policy",
    10095: "sample_freq", 10107: "description", 10114: "max_batch", 10125: "max_batch",
    10115: "max_expires", 10116: "max_deliver", 10183: "ack_wait", 10184: "backoff",
    10126: "num_replicas", 10134: "num_replicas", 10074: "num_replicas", 10005: "num_replicas",
    10135: "metadata", 10153: "inactive_threshold",
    10159: "priority_groups", 10161: "priority_groups", 10162: "priority_groups",
    10178: "priority_groups", 10196: "priority_groups", 10197: "priority_timeout",
}


class BrokerError(OperationError):
    """A broker operation failed. `message` is safe to show and store."""


class NotAsSeen(BrokerError):
    """A step was refused because its object is not the one its user saw; `info` is the one
    there now (its STREAM.INFO or CONSUMER.INFO), so the page can show it before they confirm
    again."""

    def __init__(self, message: str, info: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.info = info


def translate(exc: BaseException) -> BrokerError:
    """Map nats-py and OS errors to a readable BrokerError."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, nats.js.errors.ServiceUnavailableError | nats.errors.NoRespondersError):
        return BrokerError("JetStream is not enabled on this server or for this account")
    if isinstance(exc, nats.js.errors.APIError):
        description = exc.description or "JetStream API error"
        return BrokerError(
            f"{description} (error {exc.err_code})" if exc.err_code else description,
            err_code=exc.err_code,
            retryable=exc.err_code in RETRYABLE_ERR_CODES,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return BrokerError(f"TLS error: certificate verify failed: {exc.verify_message}",
                           field="tls_ca")
    if isinstance(exc, ssl.SSLError):
        return BrokerError(f"TLS error: {exc.reason or exc}", field="tls_ca")
    text = str(exc)
    if "authorization violation" in text.lower() or isinstance(
        exc, nats.errors.AuthorizationError
    ):
        return BrokerError("authorization violation: the server rejected the credentials",
                           field="auth_method")
    if isinstance(exc, nats.errors.TimeoutError | asyncio.TimeoutError | TimeoutError):
        return BrokerError("the server did not answer in time", retryable=True)
    if isinstance(exc, ConnectionRefusedError):
        return BrokerError("connection refused", retryable=True)
    if isinstance(exc, OSError):
        return BrokerError(exc.strerror or text or type(exc).__name__, retryable=True)
    if isinstance(exc, nats.errors.Error):
        return BrokerError(text.removeprefix("nats: ").strip("'") or type(exc).__name__,
                           retryable=isinstance(exc, nats.errors.ConnectionClosedError))
    return BrokerError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
