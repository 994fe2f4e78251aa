"""Response compression that costs nothing for a body too small to compress.

Litestar's compression middleware builds a gzip stream and its buffer for every
response to a client that accepts gzip (httpx, every browser), before it knows
the body's size, and throws them away when the body is below the minimum size.
The services' answers are nearly all one small body: this middleware holds the
response's start until the first body part, sends a small, whole body as it
is (exactly what Litestar does with it), and hands anything else to Litestar's
own compressing wrapper, the start replayed first.
"""

from __future__ import annotations

from typing import Literal

from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Message, Scope, Send


class CompressionAboveMinimum(CompressionMiddleware):
    """Litestar's compression, without its per-response setup for small whole bodies."""

    def create_compression_send_wrapper(
        self,
        send: Send,
        compression_encoding: Literal[CompressionEncoding.BROTLI, CompressionEncoding.GZIP] | str,
        scope: Scope,
    ) -> Send:
        minimum_size = self.config.minimum_size
        compressing_send = super().create_compression_send_wrapper
        start: Message | None = None
        compressing: Send | None = None

        async def send_small_as_is(message: Message) -> None:
            nonlocal start, compressing
            if compressing is not None:
                await compressing(message)
            elif message["type"] == "http.response.start":
                start = message
            elif (
                start is not None
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and len(message["body"]) < minimum_size
            ):
                await send(start)
                await send(message)
            else:
                compressing = compressing_send(send, compression_encoding, scope)
                if start is not None:
                    await compressing(start)
                await compressing(message)

        return send_small_as_is
