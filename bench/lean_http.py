"""The bench's own load client: keep-alive HTTP/1.1 connections, answers parsed by httptools.

The load generator shares the machine's two cores with the ledger it measures, so
every microsecond of CPU it spends per request is taken from the services and
shows up as their latency. aiohttp (which parses in C) spent about 0.21 ms of
CPU per deposit here, closed loop, 16 connections, with or without its tuning
knobs (no cookie jar, prebuilt URLs and bodies); this client spends about
0.03 ms, and the same 16 connections then carried 2,000 deposits/s instead of
1,200. At the open loop's rate aiohttp took half a core of two.

It does only what the bench asks: a request written in one piece on an idle
keep-alive connection (a new one while fewer than ``connections`` requests
are in flight), the answer's status and JSON body, Content-Length or chunked,
parsed by httptools (uvicorn's parser, already a dependency). A connection the
server closes is dropped; a request on it fails with :class:`ConnectionError`,
one not answered within the timeout with :class:`TimeoutError` (both OSErrors).
Timeouts are kept by one sweeper per client rather than a timer per request: a
timer per request cost the open loop a tenth of its CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Self, cast
from urllib.parse import urlencode, urlsplit

import httptools
import msgspec


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight on it."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.reusable = True
        #: When the request in flight was sent (``time.monotonic``).
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(ConnectionError(f"the server closed the connection ({exc or 'EOF'})"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.close()
            self._fail(ConnectionError(f"an answer that is not HTTP: {error}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body, self._body = b"".join(self._body), []
        self.reusable = self._parser.should_keep_alive()
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((self._parser.get_status_code(), body))

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.sent_at = time.monotonic()
        self.transport.write(request)
        return self._answer

    def time_out(self, seconds: float) -> None:
        self.close()  # an answer may still come: the connection cannot carry another
        self._fail(TimeoutError(f"no answer within {seconds} s"))

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


@functools.lru_cache(maxsize=4096)
def _split(url: str) -> tuple[tuple[str, int], str, str, str]:
    """(host and port, path, query, Host header) of ``url``: the bench asks the same few."""
    parts = urlsplit(url)
    host = (parts.hostname or "127.0.0.1", parts.port or 80)
    return host, parts.path or "/", parts.query, parts.netloc


class LeanHttp:
    """At most ``connections`` requests in flight; idle connections kept per host.

    Waiting for a free connection counts in a request's latency, as it would for
    any client. Use it as an async context manager: leaving closes every connection.
    """

    def __init__(self, connections: int, timeout_seconds: float) -> None:
        self._slots = asyncio.Semaphore(max(1, connections))
        self._timeout = timeout_seconds
        self._idle: defaultdict[tuple[str, int], list[_Connection]] = defaultdict(list)
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._sweeper = asyncio.create_task(self._sweep())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for connection in [*self._busy, *(c for idle in self._idle.values() for c in idle)]:
            connection.close()
        self._idle.clear()

    async def _sweep(self) -> None:
        """Fail every request unanswered for longer than the timeout, a few times per timeout."""
        while True:
            await asyncio.sleep(min(1.0, self._timeout / 4))
            overdue = time.monotonic() - self._timeout
            for connection in [c for c in self._busy if c.sent_at < overdue]:
                connection.time_out(self._timeout)

    async def request(
        self, method: str, url: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Answer:
        host, target, query, netloc = _split(url)
        if params:
            query = f"{query}&{urlencode(params)}" if query else urlencode(params)
        if query:
            target = f"{target}?{query}"
        head = f"{method} {target} HTTP/1.1\r\nHost: {netloc}\r\n"
        body = b"" if json is None else msgspec.json.encode(json)
        if json is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("ascii") + body
        async with self._slots:
            connection = await self._connection(host)
            self._busy.add(connection)
            try:
                status, raw = await connection.send(request)
            except BaseException:
                connection.close()  # its state is unknown: an answer may still come
                raise
            finally:
                self._busy.discard(connection)
            if connection.reusable:
                self._idle[host].append(connection)
            else:
                connection.close()
        try:
            return Answer(status, msgspec.json.decode(raw) if raw else None)
        except msgspec.DecodeError:
            return Answer(status, None)

    async def _connection(self, host: tuple[str, int]) -> _Connection:
        idle = self._idle[host]
        while idle:
            connection = idle.pop()
            if connection.reusable:
                return connection
        connecting = asyncio.get_running_loop().create_connection(_Connection, *host)
        _, connection = await asyncio.wait_for(connecting, self._timeout)
        return connection


def lean_session(connections: int, timeout_seconds: float) -> LeanHttp:
    """A client of at most ``connections`` requests in flight (enter it to use it)."""
    return LeanHttp(connections, timeout_seconds)
