"""Every service answers through uvicorn with each answer's head and body in one write.

The first test serves a plain ASGI app with the project's protocol on a real
socket and reads it with the standard library's HTTP client: answers whole,
keep-alive, a body streamed over several turns of the loop, and a closing
answer. The others pin the one rule the protocol adds: what is written in
one turn of the event loop is sent in one write, in order, and a close sends
what is kept first.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from shared_kernel.one_write_answers import OneWriteAnswers, _TurnWrites
from tests.support.infra import free_port


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        for part in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0)  # each part in a turn of its own
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = f"answer to {path}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server_port() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, http=OneWriteAnswers,
                            log_config=None, lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_answers_arrive_whole_over_a_kept_alive_connection(server_port: int) -> None:
    client = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    answers = []
    for path in ("/first", "/second", "/stream", "/third"):
        client.request("GET", path)
        response = client.getresponse()
        answers.append((response.status, response.getheader("content-type"), response.read()))
    client.close()

    assert answers == [
        (201, "text/plain", b"answer to /first"),
        (201, "text/plain", b"answer to /second"),
        (200, "text/plain", b"one two three"),
        (201, "text/plain", b"answer to /third"),
    ]


def test_a_closing_answer_is_sent_before_the_connection_closes(server_port: int) -> None:
    client = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    client.request("GET", "/close")
    response = client.getresponse()

    assert (response.status, response.read()) == (201, b"answer to /close")
    assert response.will_close


class _RecordingTransport(asyncio.Transport):
    """Records what reaches the socket's side: each write, and the close."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes | str] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.sent.append("closed")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


async def test_the_writes_of_one_turn_leave_in_one_write_in_order() -> None:
    transport = _RecordingTransport()
    writes = _TurnWrites(transport, asyncio.get_running_loop())
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    writes.write(b"body")
    assert transport.sent == []  # kept until the turn ends
    await asyncio.sleep(0)
    writes.write(b"next turn")
    await asyncio.sleep(0)

    assert transport.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next turn"]


async def test_a_close_sends_what_is_kept_first_and_nothing_after() -> None:
    transport = _RecordingTransport()
    writes = _TurnWrites(transport, asyncio.get_running_loop())
    writes.write(b"last words")
    writes.close()
    await asyncio.sleep(0)

    assert transport.sent == [b"last words", "closed"]
