"""The Redis side of the relay: where the partitions end, and adding a batch to them.

Each event becomes the entry ``<position>-0`` of its partition's stream (see
:mod:`shared_kernel.partitions`; one partition is the stream itself). Redis
refuses an id at or below a stream's top, so re-publishing after a crash adds
nothing; that refusal is expected and skipped, every other error is raised.

An entry's ``previous`` is the position of the entry before it in the same
partition, as this term of the relay wrote it: the first entry of a term in
each partition names the term's resume point, so a consumer that is further
behind sees the gap and reads the store. With several partitions, each batch
ends with a :class:`~shared_kernel.event_log.PositionMarker` in every partition
that did not get the batch's last event, so every partition's top is the
relay's position after every batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from redis.exceptions import ResponseError

from shared_kernel.event_log import LogEntry, PositionMarker, PublishedEntry
from shared_kernel.partitions import partition_of, partition_streams
from shared_kernel.redis_connection import RedisClient

log = logging.getLogger(__name__)

_ALREADY_PUBLISHED = "equal or smaller than the target stream top item"
#: Longest wait for Redis to answer a whole batch (or one question); past it the relay
#: treats Redis as gone (``TimeoutError``, an outage) and starts a new term.
REPLY_SECONDS = 10.0


def position_of(entry_id: bytes | str) -> int:
    """The log position an entry id ``<position>-<seq>`` stands for."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


class StreamPublisher:
    """Adds events to the log's partitions, each trimmed to about ``max_length`` entries."""

    def __init__(
        self, redis: RedisClient, stream_name: str, max_length: int, partitions: int = 1
    ) -> None:
        self._redis = redis
        self.stream_name = stream_name
        self.partitions = partitions
        self.streams = partition_streams(stream_name, partitions)
        self._max_length = max_length
        #: Per partition, the position of the last entry this term wrote or found there.
        self._last = [0] * partitions

    async def last_published(self) -> int:
        """How far every partition has got: the lowest top (0 when one has no stream).

        ``last-generated-id`` survives trimming, so this is where a stream ends
        even when its entries were trimmed away.
        """
        return min([await self._top(key) for key in self.streams])

    async def _top(self, key: str) -> int:
        try:
            async with asyncio.timeout(REPLY_SECONDS):
                info: dict[Any, Any] = await self._redis.xinfo_stream(key)
        except ResponseError as error:
            if "no such key" in str(error).lower():
                return 0
            raise
        return position_of(info["last-generated-id"])

    def resume_from(self, position: int) -> None:
        """Start a term: the first entry of each partition names ``position`` as ``previous``."""
        self._last = [position] * self.partitions

    async def publish(self, entries: Sequence[LogEntry]) -> int:
        """XADD ``entries`` (and markers) in one pipelined round trip; returns new events."""
        if not entries:
            return 0
        chained = [self._chain(entry) for entry in entries]
        end = entries[-1].position
        markers = [
            (key, PositionMarker(end, last))
            for key, last in zip(self.streams, self._last, strict=True)
            if last < end
        ]
        self._last = [max(last, end) for last in self._last]
        pipe = self._redis.pipeline(transaction=False)
        for key, entry in [*chained, *markers]:
            pipe.xadd(
                key,
                entry.to_fields(),  # type: ignore[arg-type]
                id=entry.entry_id,
                maxlen=self._max_length,
                approximate=True,
            )
        async with asyncio.timeout(REPLY_SECONDS):
            results = await pipe.execute(raise_on_error=False)
        added = 0
        for (key, entry), result in zip([*chained, *markers], results, strict=True):
            if isinstance(result, ResponseError) and _ALREADY_PUBLISHED in str(result):
                log.debug(
                    "entry already on the stream; skipped",
                    extra={"position": entry.position, "stream": key},
                )
            elif isinstance(result, Exception):
                raise result
            elif isinstance(entry, LogEntry):
                added += 1
        return added

    def _chain(self, entry: LogEntry) -> tuple[str, PublishedEntry]:
        """The partition key of ``entry`` and the entry naming its partition's previous one."""
        partition = partition_of(entry.stream_id, self.partitions)
        previous, self._last[partition] = self._last[partition], entry.position
        return self.streams[partition], replace(entry, previous=previous)
