"""The one way a test waits for something: poll a predicate until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str],
    *,
    interval: float = 0.05,
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    After `timeout` seconds, fail with `message` (a callable is asked only then, so it may
    describe the last state seen or read a log). The predicate may raise to stop early, e.g.
    when the process it waits for has died.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"after {timeout:g} s: {text}")
        time.sleep(interval)
