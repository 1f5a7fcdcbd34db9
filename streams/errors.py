"""The one error type an operation fails with, wherever it failed: on the broker (BrokerError
in streams.broker), or before it got there (no worker, Redis down). Its message is safe to
show and store."""

from __future__ import annotations


class OperationError(Exception):
    def __init__(
        self, message: str, *, err_code: int | None = None, retryable: bool = False,
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.err_code = err_code
        self.retryable = retryable
        self.field = field  # the form field the error belongs on, if any


class Stopped(OperationError):
    """The job stopped midway because someone asked it to (Job.cancel): it ends failed, saying
    what ran, and is no failure of the broker's."""
