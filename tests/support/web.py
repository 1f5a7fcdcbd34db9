"""`./dev web`, the production web command (gunicorn), on the test database, and a
browser-less HTTP client for it."""

from __future__ import annotations

import http.cookiejar
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.network import LOOPBACK, free_port, port_open
from tests.support.process import ServerProcess
from tests.support.project import ROOT, dev_environment


class Web(ServerProcess):
    """One gunicorn worker on a free loopback port, its jobs queued on `redis_url`; keyword
    arguments go to its environment."""

    def __init__(self, workdir: Path, redis_url: str, **env: str) -> None:
        self.port = free_port()
        self.command = [str(ROOT / "dev"), "web"]
        self.log_path = workdir / "web.log"
        self._launch(20, cwd=ROOT, env=dev_environment(redis_url, **{
            "PORT": str(self.port), "WEB_WORKERS": "1", **env}))

    @property
    def label(self) -> str:
        return "gunicorn"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def ready(self) -> bool:
        return port_open(self.port)


class WebClient:
    """A browser-less HTTP client with cookies and CSRF, posting forms urlencoded as browsers
    do."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, str]:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.status, response.read().decode()

    def post(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
             ) -> tuple[int, str]:
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        request = urllib.request.Request(
            self.base + path, data=urllib.parse.urlencode(data).encode(),
            headers={"X-CSRFToken": token, "Referer": self.base + path, **(headers or {})},
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()

    def log_in(self, username: str, password: str) -> None:
        self.get("/login/")
        self.post("/login/", {"username": username, "password": password})
