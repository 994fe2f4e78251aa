"""HEAD on every GET route (RFC 9110 section 9.3.2): the GET's status and headers, no body.

Litestar routes HEAD only to handlers declared for it (and would document each
as an operation of its own), so :func:`answer_head_as_get` wraps the app's
ASGI handler, in front of its router: a HEAD is served as the GET it mirrors
and the body is dropped on the way out; ``Content-Length`` stays the GET's,
as the RFC allows.
"""

from __future__ import annotations

from typing import cast

from litestar import Litestar
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def answer_head_as_get(app: Litestar) -> Litestar:
    """``app``, answering HEAD on every GET route."""
    app.asgi_handler = _HeadAsGet(app.asgi_handler)
    return app


class _HeadAsGet:
    def __init__(self, inner: ASGIApp) -> None:
        self._inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "HEAD":
            await self._inner(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # A copy: the server keeps its own scope and must still see HEAD.
        as_get = cast(Scope, {**scope, "method": "GET"})
        await self._inner(as_get, receive, without_body)
