"""Shared by the stream tests: the seed's answers as the form posts them, and raw JetStream
API requests (straight nats-py, not our broker layer) to arrange and inspect server state."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from typing import Any, Self

import nats
from django.test import Client
from django.urls import reverse

from streams.models import Job, Profile
from tests.conftest import wait_for_job

SEED_FORM = {
    "name": "argo_event_source", "subjects": "foo", "storage": "file", "num_replicas": "1",
    "retention": "limits", "discard": "old", "max_msgs": "-1", "max_msgs_per_subject": "-1",
    "max_bytes": "-1", "max_age": "-1", "max_msg_size": "-1", "duplicate_window": "2m0s",
    "allow_rollup_hdrs": "no", "allow_delete": "yes", "allow_purge": "yes",
}


def in_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on a private loop in another thread: Playwright's sync API owns this thread's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def api(url: str, subject: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """One raw `$JS.API.<subject>` request."""

    async def go() -> dict[str, Any]:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            body = json.dumps(payload).encode() if payload is not None else b""
            msg = await nc.request(f"$JS.API.{subject}", body, timeout=10)
            return json.loads(msg.data)
        finally:
            await nc.close()

    return in_thread(go())


def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    async def go() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        js = nc.jetstream()
        for subject, data in messages:
            await js.publish(subject, data)
        await nc.close()

    in_thread(go())


def create_raw(url: str, config: dict[str, Any]) -> dict[str, Any]:
    answer = api(url, f"STREAM.CREATE.{config['name']}", config)
    assert "error" not in answer, answer
    return answer


def live_config(url: str, name: str) -> dict[str, Any]:
    answer = api(url, f"STREAM.INFO.{name}")
    assert "error" not in answer, answer
    return answer["config"]


def job_from(response: Any) -> Job:
    match = re.search(r'id="job-(\d+)"', response.content.decode())
    assert match, response.content.decode()[:2000]
    return Job.objects.get(pk=int(match.group(1)))


def run_post(client: Client, url: str, data: dict[str, Any], timeout: float = 30) -> Job:
    response = client.post(url, data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return wait_for_job(job_from(response).pk, timeout=timeout)


def create_stream(client: Client, profile: Profile, **answers: str) -> Job:
    return run_post(client, reverse("stream_create", args=[profile.pk]),
                    {**SEED_FORM, **answers})


def refresh_stream(client: Client, profile: Profile, name: str) -> Job:
    return run_post(client, reverse("stream_refresh", args=[profile.pk, name]), {})


def refresh_list(client: Client, profile: Profile, timeout: float = 60) -> Job:
    return run_post(client, reverse("stream_list_refresh", args=[profile.pk]), {}, timeout)


def reviewed_edit(client: Client, profile: Profile, name: str, **changes: str) -> dict[str, str]:
    """What Apply posts: the edit form's values as the browser submits them, with `changes`,
    and the digest of the review they got."""
    edit = reverse("stream_edit", args=[profile.pk, name])
    answers = {**form_values(client.get(edit).content.decode()), **changes}
    review = client.post(edit, answers, HTTP_HX_REQUEST="true").content.decode()
    return {**answers, "confirm": review.split('name="confirm" value="')[1].split('"')[0]}


class _FormReader(HTMLParser):
    """The values a browser would submit from the page's stream form (enabled fields only)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select = self._textarea = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if "disabled" in attr or attr.get("name") in {None, "", "csrfmiddlewaretoken"}:
            if tag == "option" and self._select and "selected" in attr:
                self.values[self._select] = attr.get("value", "")
            return
        name = attr["name"]
        if tag == "input" and attr.get("type") == "checkbox":
            if "checked" in attr:
                self.values[name] = "on"
        elif tag == "input":
            self.values[name] = attr.get("value", "")
        elif tag == "select":
            self._select = name
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = ""
        elif tag == "textarea":
            self._textarea = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data.lstrip("\n") if not self.values[
                self._textarea] else data


def form_values(html: str) -> dict[str, str]:
    form = html.split('class="card form stream-form"')[1].split("</form>")[0]
    reader = _FormReader()
    reader.feed("<form " + form)
    return reader.values


class LoopbackProxy:
    """A TCP proxy on loopback in front of nats-server, serving on its own thread; subclasses
    decide what passes."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._cancel_pumps(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _cancel_pumps(self) -> None:
        pumps = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class FreezingProxy(LoopbackProxy):
    """freeze() makes the connections made so far go silent, as when the network path to a
    server dies without a reset; connections made later pass."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self.connections = 0
        self._frozen_upto = 0

    def freeze(self) -> None:
        self._frozen_upto = self.connections

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pump(reader, up_writer, number),
                             self._pump(up_reader, writer, number), return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    number: int) -> None:
        try:
            while data := await reader.read(65536):
                if number > self._frozen_upto:
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.close()


class LostReplyProxy(LoopbackProxy):
    """Forwards everything except the answer to the first request on `subject_prefix`: the
    server applies the request, the client never hears back, as when a reply is lost or arrives
    after the client's timeout."""

    def __init__(self, upstream_port: int, subject_prefix: str) -> None:
        super().__init__(upstream_port)
        self.prefix = subject_prefix.encode()
        self.dropped: list[bytes] = []
        self._waiting_for: bytes | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pump(reader, up_writer, self._watch_publish),
                             self._pump(up_reader, writer, self._drop_reply),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    keep: Callable[[list[bytes]], bool]) -> None:
        """Copy NATS protocol messages one by one; `keep` sees each control line's words."""
        try:
            while line := await reader.readline():
                words = line.split()
                payload = b""
                if words and words[0].upper() in {b"PUB", b"HPUB", b"MSG", b"HMSG"}:
                    payload = await reader.readexactly(int(words[-1]) + 2)
                if keep(words):
                    writer.write(line + payload)
                    await writer.drain()
        finally:
            writer.close()

    def _watch_publish(self, words: list[bytes]) -> bool:
        if (words and words[0].upper() in {b"PUB", b"HPUB"} and self._waiting_for is None
                and not self.dropped and words[1].startswith(self.prefix)):
            self._waiting_for = words[2]  # the reply subject
        return True

    def _drop_reply(self, words: list[bytes]) -> bool:
        if words and words[0].upper() in {b"MSG", b"HMSG"} and words[1] == self._waiting_for:
            self.dropped.append(words[1])
            self._waiting_for = None
            return False
        return True
