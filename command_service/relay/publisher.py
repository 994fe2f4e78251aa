"""The Redis side of the relay: where the stream ends, and adding a batch to it.

Each event becomes the entry ``<position>-0``. Redis refuses an id at or
below the stream's top, so re-publishing after a crash adds nothing; that
refusal is expected and skipped, every other error is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from shared_kernel.event_log import LogEntry
from shared_kernel.redis_connection import RedisClient

log = logging.getLogger(__name__)

_ALREADY_PUBLISHED = "equal or smaller than the target stream top item"


def position_of(entry_id: bytes | str) -> int:
    """The log position an entry id ``<position>-<seq>`` stands for."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


class StreamPublisher:
    """Adds events to one Redis Stream, trimmed to about ``max_length`` entries."""

    def __init__(self, redis: RedisClient, stream_name: str, max_length: int) -> None:
        self._redis = redis
        self.stream_name = stream_name
        self._max_length = max_length

    async def last_published(self) -> int:
        """The position of the newest id the stream ever generated (0 without a stream).

        ``last-generated-id`` survives trimming, so this is where the stream
        ends even when its entries were trimmed away.
        """
        try:
            info: dict[Any, Any] = await self._redis.xinfo_stream(self.stream_name)
        except ResponseError as error:
            if "no such key" in str(error).lower():
                return 0
            raise
        return position_of(info["last-generated-id"])

    async def publish(self, entries: Sequence[LogEntry]) -> int:
        """XADD ``entries`` in one pipelined round trip; returns how many were new."""
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            pipe.xadd(
                self.stream_name,
                entry.to_fields(),  # type: ignore[arg-type]
                id=entry.entry_id,
                maxlen=self._max_length,
                approximate=True,
            )
        results = await pipe.execute(raise_on_error=False)
        added = 0
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, ResponseError) and _ALREADY_PUBLISHED in str(result):
                log.debug(
                    "event already on the stream; skipped",
                    extra={"position": entry.position, "stream": self.stream_name},
                )
            elif isinstance(result, Exception):
                raise result
            else:
                added += 1
        return added
