"""A TCP proxy in front of PostgreSQL that can lose the reply to a COMMIT, on purpose.

The one fault a process kill cannot produce deterministically: the server
committed, the client never heard. The proxy reads the PostgreSQL wire
protocol the clients send (simple queries, and the extended protocol that
psycopg's pipeline mode uses, several messages to a packet), and when told
to (:meth:`CommitReplyDroppingProxy.drop_next_commit_reply`) it forwards the
next matching COMMIT so the server commits, holds back the server's answer
until it shows the commit succeeded, then discards it and closes both sides.
A COMMIT that fails (the server answers an error or ROLLBACK) is passed on
and the drop stays armed for the next one. A statement outside a transaction
block (autocommit: the statement is its own transaction, as the event store's
one-statement append is) counts as a commit of its own: its answer is dropped
once the server says it is ready again without an error, i.e. committed.
Only with ``touching``: unnarrowed, any autocommitted check would do.

``touching`` narrows which transactions count, e.g. only those that inserted
into the event store; statements prepared earlier on the connection are
recognised by their name.

:meth:`~CommitReplyDroppingProxy.cut` closes every connection at once (a
network partition that heals immediately). Runs its own asyncio loop in a
daemon thread, so tests call it from plain synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

from tests.support.infra import free_port

_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104
_ENDS_TRANSACTION = re.compile(rb"^\s*(COMMIT|END|ROLLBACK|ABORT)\b", re.IGNORECASE)
_BEGINS_TRANSACTION = re.compile(rb"^\s*(BEGIN|START\s+TRANSACTION)\b", re.IGNORECASE)
#: Statements remembered per transaction (an autocommit connection never ends one).
_MAX_REMEMBERED = 1_000
_COMMITS = re.compile(rb"^\s*(COMMIT|END)\b", re.IGNORECASE)
_COMMIT_DONE = b"COMMIT\x00"  # CommandComplete tag of a COMMIT that committed
_PRE_STARTUP_CODES = {struct.pack("!I", code) for code in (_SSL_REQUEST, _GSSENC_REQUEST)}


class _Message(NamedTuple):
    kind: bytes  # b"" for the untyped startup-phase messages
    body: bytes
    raw: bytes  # exactly as it travelled
    bare: bool = False  # a one-byte answer to an SSL/GSS request


@dataclass
class _Frames:
    """Splits one direction of a connection into messages.

    A client starts with untyped messages (SSL/GSS requests, then the startup
    message); the server answers an SSL/GSS request with one bare byte.
    """

    untyped: bool
    bare_bytes_expected: int = 0
    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[_Message]:
        self.buffer += data
        messages: list[_Message] = []
        while self.buffer:
            if self.bare_bytes_expected:
                byte = bytes(self.buffer[:1])
                messages.append(_Message(byte, b"", byte, bare=True))
                del self.buffer[:1]
                self.bare_bytes_expected -= 1
                continue
            header = 4 if self.untyped else 5
            if len(self.buffer) < header:
                break
            (length,) = struct.unpack("!I", self.buffer[header - 4 : header])
            end = header - 4 + length
            if len(self.buffer) < end:
                break
            raw = bytes(self.buffer[:end])
            del self.buffer[:end]
            kind = b"" if self.untyped else raw[:1]
            messages.append(_Message(kind, raw[header:], raw))
            if self.untyped and raw[4:8] not in _PRE_STARTUP_CODES:
                self.untyped = False  # that was the startup message
        return messages


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    from_client: _Frames = field(default_factory=lambda: _Frames(untyped=True))
    from_server: _Frames = field(default_factory=lambda: _Frames(untyped=False))
    #: Encrypted (the server accepted SSL/GSS): nothing can be read, nothing dropped.
    opaque: bool = False
    statements: dict[bytes, bytes] = field(default_factory=dict)
    #: The statements sent since the last COMMIT or ROLLBACK.
    transaction: list[bytes] = field(default_factory=list)
    #: Inside BEGIN ... COMMIT; outside it every statement commits by itself.
    in_block: bool = False
    #: Whose answer is being held back: a COMMIT's (dropped once it says COMMIT) or
    #: an autocommitted statement's (dropped once the server is ready, error-free).
    dropping: str = ""
    held: list[bytes] = field(default_factory=list)
    #: Statements sent since the client last asked for answers (a Sync or simple Query).
    trip: list[bytes] = field(default_factory=list)

    def close(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class CommitReplyDroppingProxy:
    """``127.0.0.1:<port>`` -> ``upstream_host:upstream_port``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._armed = 0
        self._touching: re.Pattern[bytes] | None = None
        self._dropped = 0
        self._trips: list[tuple[str, ...]] = []
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    # -- the test's side ------------------------------------------------------------

    def start(self) -> CommitReplyDroppingProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        started.result(timeout=10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def drop_next_commit_reply(self, count: int = 1, touching: str | None = None) -> None:
        """Lose the answer of the next ``count`` successful COMMITs (of transactions whose
        statements match the regular expression ``touching``, when given)."""
        with self._lock:
            self._armed += count
            self._touching = re.compile(touching.encode(), re.IGNORECASE) if touching else None

    @property
    def commit_replies_dropped(self) -> int:
        with self._lock:
            return self._dropped

    @property
    def drops_pending(self) -> int:
        with self._lock:
            return self._armed

    def round_trips(self) -> list[tuple[str, ...]]:
        """Each time a client asked for answers (a Sync, a Flush or a simple Query): the
        statements it had sent since the last time, in order. ``clear_round_trips``
        starts the count again."""
        with self._lock:
            return list(self._trips)

    def clear_round_trips(self) -> None:
        with self._lock:
            self._trips.clear()

    def cut(self) -> int:
        """Close every connection now, both sides; how many there were."""
        future = asyncio.run_coroutine_threadsafe(self._cut(), self._loop)
        return future.result(timeout=10)

    # -- the loop's side ------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()

    async def _cut(self) -> int:
        links = list(self._links)
        for link in links:
            link.close()
        return len(links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(client=writer, server=up_writer)
        self._links.add(link)
        try:
            pumps = [
                asyncio.create_task(self._client_to_server(link, reader)),
                asyncio.create_task(self._server_to_client(link, up_reader)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
        finally:
            link.close()
            self._links.discard(link)

    async def _client_to_server(self, link: _Link, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                held = "" if link.opaque else self._holds_commit(link, link.from_client.feed(data))
                if held:
                    link.dropping = held  # before the server can possibly answer
                link.server.write(data)
                await link.server.drain()

    async def _server_to_client(self, link: _Link, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if link.opaque:
                    link.client.write(data)
                else:
                    for message in link.from_server.feed(data):
                        if message.bare and message.kind in (b"S", b"G"):
                            link.opaque = True  # encryption accepted
                        if self._pass_or_hold(link, message) == "dropped":
                            return
                await link.client.drain()

    def _holds_commit(self, link: _Link, messages: list[_Message]) -> str:
        """Track the transaction's statements; which answer to drop goes out now, if any."""
        drop = ""
        for kind, body, _, _ in messages:
            if kind == b"" and body[:4] in _PRE_STARTUP_CODES:
                link.from_server.bare_bytes_expected += 1
                continue
            text = self._statement_text(link, kind, body)
            if text is not None:
                link.trip.append(text)
            if kind in (b"S", b"H", b"Q"):  # Sync, Flush, simple Query: the client waits
                with self._lock:
                    self._trips.append(tuple(t.decode(errors="replace") for t in link.trip))
                link.trip.clear()
            if text is None:
                continue
            if _BEGINS_TRANSACTION.match(text):  # what came before committed by itself
                link.transaction.clear()
                link.in_block = True
                continue
            if not link.in_block and not _ENDS_TRANSACTION.match(text):
                with self._lock:
                    if self._armed > 0 and self._touching and self._touching.search(text):
                        self._armed -= 1  # reserved; given back if the statement fails
                        drop = "statement"
                continue
            if not _ENDS_TRANSACTION.match(text):
                if len(link.transaction) < _MAX_REMEMBERED:
                    link.transaction.append(text)
                continue
            with self._lock:
                if _COMMITS.match(text) and self._armed > 0 and self._matches(link.transaction):
                    self._armed -= 1  # reserved; given back if the COMMIT fails
                    drop = "commit"
            link.transaction.clear()
            link.in_block = False
        return drop

    def _matches(self, transaction: list[bytes]) -> bool:
        """Whether the statements of a transaction make its COMMIT one to drop."""
        if self._touching is None:
            return bool(transaction)
        return any(self._touching.search(text) for text in transaction)

    @staticmethod
    def _statement_text(link: _Link, kind: bytes, body: bytes) -> bytes | None:
        if kind == b"Q":
            return body.rstrip(b"\x00")
        if kind == b"P":  # Parse: name, query; a named one runs (and is seen) at its Bind
            name, query = body.split(b"\x00", 2)[:2]
            link.statements[name] = query
            return None if name else query
        if kind == b"B":  # Bind: portal, statement name; the unnamed one was seen at Parse
            statement = body.split(b"\x00", 2)[1]
            return link.statements.get(statement) if statement else None
        return None

    def _pass_or_hold(self, link: _Link, message: _Message) -> str:
        kind, body, raw, _ = message
        if not link.dropping:
            link.client.write(raw)
            return "passed"
        link.held.append(raw)
        committed = (link.dropping == "commit" and kind == b"C" and body == _COMMIT_DONE) or (
            link.dropping == "statement" and kind == b"Z"
        )
        if committed:
            with self._lock:
                self._dropped += 1
            link.close()
            return "dropped"
        if kind == b"E" or (kind == b"C" and body.startswith(b"ROLLBACK")):
            with self._lock:
                self._armed += 1  # nothing committed: the next COMMIT is dropped instead
            link.dropping = ""
            for held in link.held:
                link.client.write(held)
            link.held.clear()
        return "held"
