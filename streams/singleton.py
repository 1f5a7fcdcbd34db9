"""What must run once per deployment (the advisory listener, the scheduler) holds a lock in
the Redis that carries the job queue while it runs. A second one started waits, saying who
holds it, and takes over when the first stops (it lets go) or dies (the lock expires
SINGLETON_TTL seconds after its last renewal)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from celery import current_app
from django.conf import settings
from redis.exceptions import LockError, LockNotOwnedError

log = logging.getLogger(__name__)

POLL = 2.0  # how often a waiting one tries again, at most


def key(name: str) -> str:
    return f"memphisadmin:only-one:{name}"


@contextmanager
def only_one(name: str) -> Iterator[None]:
    """Run the block once the lock `name` is this process's, holding it until the block
    ends. Should the lock be lost (Redis lost it, or it expired while this process was
    stopped and another took it), this process is sent SIGTERM: two must never run."""
    client = redis.Redis.from_url(current_app.conf.broker_url, socket_connect_timeout=2,
                                  socket_timeout=5)
    ttl = settings.SINGLETON_TTL  # renewed every third of it while the holder lives
    lock = client.lock(key(name), timeout=ttl, thread_local=False)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    told = ""
    while True:
        try:
            if lock.acquire(blocking=False, token=token):
                break
            holder = (client.get(key(name)) or b"").decode(errors="replace")
            said = f"another {name} holds the lock ({holder.rpartition(':')[0]}): waiting"
        except redis.RedisError as exc:
            said = f"{name}: cannot reach Redis for the lock ({exc}): trying again"
        if said != told:
            log.warning("%s", said)
            told = said
        time.sleep(min(POLL, ttl / 3))
    log.info("%s: holding the lock (%s)", name, token)
    stop = threading.Event()
    threading.Thread(target=_renew, args=(lock, name, ttl / 3, stop), name=f"lock-{name}",
                     daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(LockError, redis.RedisError):  # expired, or Redis is away
            lock.release()


def _renew(lock: redis.lock.Lock, name: str, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            lock.reacquire()
        except LockNotOwnedError:
            if lock.acquire(blocking=False, token=lock.local.token):  # it expired, nobody took it
                continue
            log.error("%s: lost the lock to another %s: stopping", name, name)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except redis.RedisError as exc:  # nobody else can take it meanwhile either
            log.warning("%s: could not renew the lock: %s", name, exc)
