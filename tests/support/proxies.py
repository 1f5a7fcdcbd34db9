"""TCP proxies on loopback in front of nats-server, for the faults a real network has: a reply
that never arrives, a connection that goes silent, a busy or slow server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Self

from tests.support.network import LOOPBACK


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
        return f"nats://{LOOPBACK}:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, LOOPBACK, 0))
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
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
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
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        await asyncio.gather(self._pump(reader, up_writer, self._watch_publish),
                             self._pump(up_reader, writer, self._drop_reply),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    keep: Callable[[list[bytes]], bool]) -> None:
        """Copy NATS protocol messages one by one; `keep` sees each control line's words."""
        try:
            async for words, message in _messages(reader):
                if keep(words):
                    writer.write(message)
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



class BusyProxy(LoopbackProxy):
    """Answers the first `times` requests on `subject_prefix` itself, with the JetStream API's
    503 "temporarily unavailable" (10008), as a cluster between leaders or a server short of
    resources does; everything else passes."""

    BUSY = (b'{"type":"io.nats.jetstream.api.v1.error","error":{"code":503,'
            b'"err_code":10008,"description":"JetStream system temporarily unavailable"}}')

    def __init__(self, upstream_port: int, subject_prefix: str, times: int) -> None:
        super().__init__(upstream_port)
        self.prefix = subject_prefix.encode()
        self.left = times
        self.answered: list[bytes] = []  # the subjects it answered busy

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        inboxes: dict[bytes, bytes] = {}  # the client's reply subscriptions: prefix → sid

        async def from_client() -> None:
            try:
                while line := await reader.readline():
                    words = line.split()
                    verb = words[0].upper() if words else b""
                    payload = b""
                    if verb in {b"PUB", b"HPUB"}:
                        payload = await reader.readexactly(int(words[-1]) + 2)
                    if verb == b"SUB" and words[1].endswith(b".*"):
                        inboxes[words[1][:-1]] = words[-1]
                    if (verb == b"PUB" and len(words) == 4 and self.left > 0
                            and words[1].startswith(self.prefix)):
                        sid = next((sid for prefix, sid in inboxes.items()
                                    if words[2].startswith(prefix)), None)
                        if sid is not None:
                            self.left -= 1
                            self.answered.append(words[1])
                            writer.write(b"MSG %s %s %d\r\n%s\r\n" % (
                                words[2], sid, len(self.BUSY), self.BUSY))
                            await writer.drain()
                            continue
                    up_writer.write(line + payload)
                    await up_writer.drain()
            finally:
                up_writer.close()

        async def from_server() -> None:  # whole messages, so an answer never splits one
            try:
                while line := await up_reader.readline():
                    words = line.split()
                    payload = b""
                    if words and words[0].upper() in {b"MSG", b"HMSG"}:
                        payload = await up_reader.readexactly(int(words[-1]) + 2)
                    writer.write(line + payload)
                    await writer.drain()
            finally:
                writer.close()

        await asyncio.gather(from_client(), from_server(), return_exceptions=True)


class PacedProxy(LoopbackProxy):
    """Passes requests on `subject_prefix` to the server one per `every` seconds, as a broker
    slowed by its disks or a long link answers them; the rest of the connection's traffic
    waits behind them, as on one socket. `passed` counts those let through."""

    def __init__(self, upstream_port: int, subject_prefix: str, every: float) -> None:
        super().__init__(upstream_port)
        self.prefix = subject_prefix.encode()
        self.every = every
        self.passed = 0

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        await asyncio.gather(self._pump(reader, up_writer, paced=True),
                             self._pump(up_reader, writer, paced=False),
                             return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    paced: bool) -> None:
        """Whole protocol messages, so a pause never splits one."""
        try:
            async for words, message in _messages(reader):
                if (paced and words and words[0].upper() in {b"PUB", b"HPUB"}
                        and words[1].startswith(self.prefix)):
                    await asyncio.sleep(self.every)
                    self.passed += 1
                writer.write(message)
                await writer.drain()
        finally:
            writer.close()


async def _messages(reader: asyncio.StreamReader) -> AsyncIterator[tuple[list[bytes], bytes]]:
    """Whole NATS protocol messages as they come: a control line's words, and the line with
    its payload (PUB, HPUB, MSG and HMSG carry one)."""
    while line := await reader.readline():
        words = line.split()
        payload = b""
        if words and words[0].upper() in {b"PUB", b"HPUB", b"MSG", b"HMSG"}:
            payload = await reader.readexactly(int(words[-1]) + 2)
        yield words, line + payload
