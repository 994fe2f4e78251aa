"""Each HTTP answer leaves in one write: its head and its body together.

uvicorn writes an answer's status line and headers the moment the app sends
``http.response.start``, and the body with ``http.response.body``: two sends,
two TCP segments, and the client woken twice for every answer. On loopback the
sender's send also delivers the segment and wakes the receiver, so the first
of the two was the costliest line of the command service at full load (a
sixth of its time, the body's send a twentieth).

Every write of one turn of the event loop is kept and sent as one, at the end of
that turn (``call_soon``): the app sends both messages of a small answer in one
turn, so they leave together. Nothing waits longer than the turn; a close first
sends what is kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _TurnWrites:
    """A transport whose writes of one event-loop turn go out in one ``write``."""

    __slots__ = ("_kept", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._kept:
            self._loop.call_soon(self._send)
        self._kept.append(bytes(data))

    def _send(self) -> None:
        if not self._kept:
            return
        data = b"".join(self._kept) if len(self._kept) > 1 else self._kept[0]
        self._kept.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._send()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteAnswers(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through :class:`_TurnWrites`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_TurnWrites(transport, self.loop))  # type: ignore[arg-type]
