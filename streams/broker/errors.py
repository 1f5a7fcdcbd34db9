"""Broker failures as readable messages that never contain a secret: BrokerError, and the
translation of nats-py's and the operating system's exceptions into it."""

from __future__ import annotations

import asyncio
import ssl

import nats.errors
import nats.js.errors

from streams.errors import OperationError

RETRYABLE_ERR_CODES = {10008}  # JetStream temporarily unavailable
NOT_FOUND = 10059
# The form field each JetStream error belongs to.
ERROR_FIELDS = {10058: "name", 10065: "subjects", 10074: "num_replicas", 10005: "num_replicas"}


class BrokerError(OperationError):
    """A broker operation failed. `message` is safe to show and store."""


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
