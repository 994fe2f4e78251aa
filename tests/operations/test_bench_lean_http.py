"""The bench's load client against a real socket server that answers as told by the path.

The server is written here, independent of the client: it parses each request
itself and answers keep-alive JSON, a chunked body, ``Connection: close``, a
dropped connection or silence, so each of the client's promises is checked
against bytes on a real connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bench.lean_http import lean_session


@dataclass
class _Server:
    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *header_lines = head.decode().split("\r\n")
                method, target, _ = line.split(" ")
                headers = {
                    k.lower(): v.strip()
                    for k, _, v in (h.partition(":") for h in header_lines if h)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((method, target, headers, body))
                if not await self._answer(target, writer):
                    return
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()

    async def _answer(self, target: str, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection ends after it."""
        path = target.partition("?")[0]
        if path == "/drop":
            return False
        if path == "/silent":
            await asyncio.Event().wait()
        if path == "/held":
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            async with self.held:
                self.held.notify_all()
            await self.release.wait()
            self.in_flight -= 1
        if path == "/chunked":
            chunks = [b'{"parts": ', b'[1, 2, 3]}']
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
            writer.write(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            return True
        if path == "/text":
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\noops")
            return True
        payload = json.dumps({"target": target}).encode()
        closing = path == "/close"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + (b"Connection: close\r\n" if closing else b"")
            + b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        await writer.drain()
        return not closing


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    state = _Server()
    listening = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield state


async def test_a_json_request_goes_whole_and_the_connection_is_kept(server: _Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with lean_session(4, timeout_seconds=5) as http:
        answer = await http.request(
            "POST", f"{base}/accounts/a/deposits", json={"amount": 7}, params={"min_position": 12}
        )
        again = await http.request("GET", f"{base}/accounts/a?x=1", params={"min_position": 3})
        plain = await http.request("GET", f"{base}/accounts/a")

    assert (answer.status, answer.body) == (200, {"target": "/accounts/a/deposits?min_position=12"})
    assert again.body == {"target": "/accounts/a?x=1&min_position=3"}
    assert plain.body == {"target": "/accounts/a"}
    method, _, headers, body = server.requests[0]
    assert method == "POST" and json.loads(body) == {"amount": 7}
    assert headers["content-type"] == "application/json"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert server.requests[1][0] == "GET" and server.requests[1][3] == b""
    assert server.connections == 1  # keep-alive: one connection for the three


async def test_chunked_and_non_json_answers(server: _Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with lean_session(1, timeout_seconds=5) as http:
        chunked = await http.request("GET", f"{base}/chunked")
        text = await http.request("GET", f"{base}/text")
    assert (chunked.status, chunked.body) == (201, {"parts": [1, 2, 3]})
    assert (text.status, text.body) == (502, None)


async def test_a_connection_the_server_ends_is_not_used_again(server: _Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with lean_session(1, timeout_seconds=5) as http:
        closing = await http.request("GET", f"{base}/close")
        with pytest.raises(ConnectionError):
            await http.request("GET", f"{base}/drop")
        after = await http.request("GET", f"{base}/after")
    assert closing.status == 200 and after.body == {"target": "/after"}
    assert server.connections == 3


async def test_an_unanswered_request_times_out_and_the_next_one_is_answered(
    server: _Server,
) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with lean_session(1, timeout_seconds=0.3) as http:
        with pytest.raises(TimeoutError):
            await http.request("GET", f"{base}/silent")
        answer = await http.request("GET", f"{base}/next")
    assert answer.body == {"target": "/next"}
    assert server.connections == 2  # the silent one is not reused: its answer may still come


async def test_no_more_requests_in_flight_than_connections(server: _Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with lean_session(3, timeout_seconds=10) as http:
        requests = [
            asyncio.create_task(http.request("GET", f"{base}/held?n={n}")) for n in range(20)
        ]
        async with server.held:
            await server.held.wait_for(lambda: server.in_flight == 3)
        assert not any(request.done() for request in requests)
        server.release.set()
        answers = await asyncio.gather(*requests)
    assert sorted(a.body["target"] for a in answers) == sorted(f"/held?n={n}" for n in range(20))
    assert server.most_in_flight == 3 and server.connections == 3
