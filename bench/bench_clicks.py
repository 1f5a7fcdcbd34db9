"""What a person feels: milliseconds from the click on "Create stream" to the outcome on the
page, in Chromium, against the production web and worker commands on loopback.

    .venv/bin/python bench/bench_clicks.py [--creates 20]

Each create is timed inside the browser (the click event to the moment the success line is in
the page), beside the broker alone: the same create as one raw nats-py request on a kept
connection, taken just before. Target: click → outcome, median ≤ 100 ms.

Measured two ways, one after the other on the same servers: as production runs (DEBUG off)
against an empty broker, then as a first-time user meets it on `./dev run` (DEBUG on) with
`--streams` streams (1,100) on the broker and in the dashboard's list. The dashboard's own
share of a click is the click figure minus the broker's create: target under 50 ms either way.

Starts its own nats-server, redis-server, SQLite database, `./dev worker` and `./dev web` in a
temporary directory (throwaway keys, plain HTTP on loopback, SECURE_SSL_REDIRECT off), and
stops them at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from bench.harness import give_up, wait_for, within  # noqa: E402
from tests.support.browser import HOME  # noqa: E402
from tests.support.nats_server import NatsServer  # noqa: E402
from tests.support.network import free_port, wait_for_port  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "bench-pass-1234"
# Set before each click: the time of the click, and of the first moment the outcome is shown.
WATCH = """() => {
  window.__t = {};
  document.addEventListener("click", (event) => {
    if (event.target.closest("button[type=submit]")) window.__t.click = performance.now();
  }, true);
  new MutationObserver(() => {
    if (!window.__t.done && document.querySelector(".success, .job.failed"))
      window.__t.done = performance.now();
  }).observe(document.body, {childList: true, subtree: true});
}"""


def start(command: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / f"{command}.log").open("wb")
    return subprocess.Popen([str(ROOT / "dev"), command], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**env, "PATH": f"{Path(sys.executable).parent}:"
                                                f"{os.environ['PATH']}"})


def wait_ready(log: Path, marker: bytes, process: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            give_up(f"{log.stem} exited:\n{log.read_text()[-3000:]}")
        return marker in log.read_bytes()

    wait_for(ready, 30, lambda: f"{log.stem} did not start:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--streams", type=int, default=1100,
                        help="streams on the broker for the second way")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="memphisadmin-clicks-"))
    servers: list = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        nats_server = NatsServer.start(workdir / "nats", name="memphisadmin-clicks")
        redis = RedisServer.start(workdir / "redis")
        servers += [nats_server, redis]
        port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "memphisadmin.settings", "DEBUG": "false",
               "SECRET_KEY": secrets.token_urlsafe(50), "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
               "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
               "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}", "REDIS_URL": redis.url,
               "LOG_LEVEL": "WARNING", "ALLOWED_HOSTS": "localhost", "PORT": str(port),
               "SECURE_SSL_REDIRECT": "false", "STATIC_ROOT": str(workdir),
               "MEMPHISADMIN_VAR_DIR": str(workdir)}
        os.environ.update(env)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from streams.models import Profile

        call_command("migrate", verbosity=0)
        get_user_model().objects.create_superuser("bench", "", PASSWORD)
        profile = Profile.objects.create(name="bench", servers=nats_server.url,
                                         last_server_version=nats_server.version)
        base = f"http://localhost:{port}"
        print(f"nats-server {nats_server.version}; SQLite; ./dev web and ./dev worker; "
              f"Chromium {CHROMIUM}")
        print(f"\n{'':<46}{'median':>10}{'p90':>10}{'max':>10}")
        for prefix, way, debug, streams in (
                ("empty", "empty broker, DEBUG off", "false", 0),
                ("full", f"{args.streams:,} streams, DEBUG on", "true", args.streams)):
            if streams:
                fill(nats_server.url, streams)
            processes = restart(processes, {**env, "DEBUG": debug}, workdir, port)
            if streams:
                refresh_list(base, profile.pk)
            ours, raw = measure(base, profile.pk, nats_server.url, args.creates, prefix)
            share = [click - broker for click, broker in zip(ours, raw, strict=True)]
            print(way)
            for label, values in ((f"  click → outcome shown (n={args.creates})", ours),
                                  ("  broker alone (raw create)", raw),
                                  ("  the dashboard's share (click − broker)", share)):
                ordered = sorted(values)
                print(f"{label:<46}{statistics.median(values):>8.1f}ms"
                      f"{ordered[int(0.9 * (len(ordered) - 1))]:>8.1f}ms{ordered[-1]:>8.1f}ms",
                      flush=True)
        print("\ntargets: click → outcome median ≤ 100 ms; the dashboard's share < 50 ms")
    finally:
        stop(processes)
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


def restart(processes: list[subprocess.Popen[bytes]], env: dict[str, str], workdir: Path,
            port: int) -> list[subprocess.Popen[bytes]]:
    """`./dev worker` and `./dev web` with these settings, the ones before stopped."""
    stop(processes)
    worker = start("worker", env, workdir)
    wait_ready(workdir / "worker.log", b"ready.", worker)
    web = start("web", env, workdir)
    wait_for_port(port, timeout=30)
    return [worker, web]


def fill(nats_url: str, count: int) -> None:
    """`count` streams on the broker, each create acknowledged, 100 at a time."""

    async def go() -> None:
        nc = await within(10, "connecting to nats-server", nats.connect(nats_url))
        for first in range(0, count, 100):
            await within(60, f"creating streams {first}–{first + 99}", asyncio.gather(*(
                nc.request(f"$JS.API.STREAM.CREATE.filled_{index:05d}", json.dumps(
                    {"name": f"filled_{index:05d}", "subjects": [f"filled.{index}"],
                     "storage": "memory"}).encode(), timeout=30)
                for index in range(first, min(first + 100, count)))))
        await nc.close()

    asyncio.run(go())


def refresh_list(base: str, profile_id: int) -> None:
    """The dashboard's list read once, so its rows hold every stream, as a user's would."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = log_in(browser, base)
        page.goto(f"/profiles/{profile_id}/streams/")
        page.click("button:has-text('Refresh')")
        page.wait_for_selector("#list-job [data-status=succeeded]", timeout=60_000)
        browser.close()


def log_in(browser: Any, base: str) -> Any:
    page = browser.new_page(base_url=base)
    page.goto("/login/")
    page.fill("#id_username", "bench")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(HOME)  # logging in lands on the overview
    return page


def measure(base: str, profile_id: int, nats_url: str, count: int, prefix: str
            ) -> tuple[list, list]:
    # Raw nats-py on a loop of its own thread: Playwright's sync API owns this thread's loop.
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def on_loop(coroutine: Any) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(30)
        except TimeoutError:
            give_up(f"{coroutine.__qualname__}: no answer from nats-server within 30 s")

    nc = on_loop(nats.connect(nats_url))

    def raw_create(name: str) -> float:
        async def go() -> float:
            started = time.perf_counter()
            await nc.request(f"$JS.API.STREAM.CREATE.{name}", json.dumps(
                {"name": name, "subjects": [f"{name}.>"]}).encode(), timeout=5)
            return (time.perf_counter() - started) * 1000

        return on_loop(go())

    ours: list[float] = []
    raw: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = log_in(browser, base)
        for index in range(count + 2):  # the first two warm up the page and the worker
            raw_ms = raw_create(f"raw_{prefix}_{index:03d}")
            page.goto(f"/profiles/{profile_id}/streams/new/")
            page.fill("#id_name", f"clicked_{prefix}_{index:03d}")
            page.fill("#id_subjects", f"clicked.{prefix}.{index}")
            page.evaluate(WATCH)
            time.sleep(0.05)  # let the server settle after the page load
            page.click("button:has-text('Create stream')")
            # Polled from here (wait_for_function evaluates a string, which the CSP refuses);
            # the times themselves are taken in the page.
            deadline = time.monotonic() + 30
            while not page.evaluate("window.__t.done"):
                if time.monotonic() > deadline:
                    give_up(f"create {index}: no outcome shown within 30 s of the click")
                page.wait_for_timeout(10)
            if page.locator(".job.failed").count():
                give_up(f"create {index} failed: {page.locator('.job.failed').inner_text()}")
            if index >= 2:
                ours.append(page.evaluate("window.__t.done - window.__t.click"))
                raw.append(raw_ms)
        browser.close()
    on_loop(nc.close())
    loop.call_soon_threadsafe(loop.stop)
    return ours, raw


if __name__ == "__main__":
    main()
