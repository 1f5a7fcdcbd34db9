"""The README's first command, for real: `./dev run` brings up web, worker, the advisory
listener, Redis and a local JetStream server; a new user logs in, tests the ready-made profile,
and Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support.browser import log_in
from tests.support.network import free_port
from tests.support.project import ROOT
from tests.support.waiting import wait_until


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_dev_run_serves_a_working_dashboard(browser: Browser, tmp_path: Path) -> None:
    ports = {"PORT": free_port(), "NATS_PORT": free_port(), "REDIS_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(MEMPHISADMIN_VAR_DIR=str(tmp_path), ADMIN_PASSWORD="first-login-pass",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    log_path = tmp_path / "dev-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(ROOT / "dev"), "run"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def running() -> bool:
            assert process.poll() is None, log_path.read_text()
            return b"memphisadmin is running at" in log_path.read_bytes()

        wait_until(running, 180, log_path.read_text, interval=0.2)
        wait_until(lambda: b"advisory listener started" in log_path.read_bytes(), 30,
                   log_path.read_text, interval=0.2)
        output = log_path.read_text()
        assert "created administrator 'admin'" in output
        assert "first-login-pass" not in output  # a password from the environment is not echoed

        page = browser.new_page(base_url=f"http://127.0.0.1:{ports['PORT']}")
        log_in(page, "admin", "first-login-pass")
        page.click("text=local")
        started = time.monotonic()
        page.click("button:has-text('Test connection')")
        expect(page.locator(".server-version")).to_contain_text("nats-server 2.", timeout=10_000)
        elapsed = time.monotonic() - started
        page.close()
        assert elapsed < 3, f"the version took {elapsed:.2f} s to appear"
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        process.wait(30)
    assert not any(listening(port) for port in ports.values())
    assert "advisory listener stopped" in log_path.read_text()
