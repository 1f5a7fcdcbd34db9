"""The advisory listener told at once that the profiles to follow changed (a profile saved or
deleted), so switching **Record changes made outside** on takes effect within a second or two:
a Redis pub/sub message, on the Redis that carries the job queue. The listener still reads its
targets every ADVISORY_REREAD_INTERVAL, so a message lost (Redis down, no listener subscribed)
only delays."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from celery import current_app

log = logging.getLogger(__name__)

CHANNEL = "memphisadmin:listener-targets"


def tell_listener() -> None:
    """Called once a profile's change is committed."""
    try:
        redis.Redis.from_url(current_app.conf.broker_url, socket_connect_timeout=1,
                             socket_timeout=1).publish(CHANNEL, b"1")
    except redis.RedisError as exc:
        log.warning("could not tell the advisory listener: %s", exc)


def listen(wake: Callable[[], None]) -> None:
    """Call `wake` on every message, from a thread of its own, reconnecting while Redis is
    away (the listener's re-reads cover the time meanwhile)."""

    def run() -> None:
        delay = 1.0
        while True:
            try:
                pubsub = redis.Redis.from_url(current_app.conf.broker_url,
                                              socket_connect_timeout=2,
                                              health_check_interval=30).pubsub()
                pubsub.subscribe(CHANNEL)
                delay = 1.0
                for message in pubsub.listen():
                    if message["type"] == "message":
                        wake()
            except redis.RedisError as exc:
                log.warning("listener wake-ups: %s; subscribing again in %g s", exc, delay)
                time.sleep(delay)
                delay = min(2 * delay, 30.0)

    threading.Thread(target=run, name="memphisadmin-wake", daemon=True).start()
