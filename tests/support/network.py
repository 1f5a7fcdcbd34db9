"""Loopback ports and plain HTTP GETs to the servers' monitoring endpoints."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from tests.support.waiting import wait_until

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Ask the kernel for an unused loopback port (tiny race window, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    wait_until(lambda: port_open(port), timeout, f"nothing is listening on {LOOPBACK}:{port}")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET a loopback monitoring URL; HTTP errors are returned, not raised (503 = not ready)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")
