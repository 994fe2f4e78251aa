"""The projector's side of the Redis consumer group.

Entries are delivered to one consumer of the group and stay pending until
XACKed after the read-model transaction commits, so a crash between the two
re-delivers them (the checkpoint then skips them). Pending entries of a
consumer that died are claimed with XAUTOCLAIM once idle long enough.
When the stream or group vanished (FLUSHALL, Redis restarted empty), the
group is recreated at the start of whatever stream there now is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from redis.exceptions import ResponseError

from projector.batch import Item, Unreadable
from shared_kernel.event_log import MalformedEntry, read_entry
from shared_kernel.redis_connection import RedisClient

log = logging.getLogger(__name__)

#: One entry as redis-py returns it: its id and its fields (empty once deleted).
StreamEntry = tuple[bytes, Mapping[bytes, bytes]]


def position_of(entry_id: bytes | str) -> int:
    """The position ``<position>-<seq>`` stands for."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def to_item(entry_id: bytes, fields: Mapping[bytes, bytes]) -> Item:
    """Parse one entry; anything that does not describe a log event becomes Unreadable."""
    position = position_of(entry_id)
    try:
        entry = read_entry(fields)
    except MalformedEntry as error:
        return Unreadable(position, fields, f"MalformedEntry: {error}")
    if entry.position != position:
        error_text = f"position field {entry.position} disagrees with entry id {entry_id!r}"
        return Unreadable(position, fields, error_text)
    if not 0 <= entry.previous < entry.position:
        error_text = f"previous {entry.previous} is not below position {entry.position}"
        return Unreadable(position, fields, error_text)
    return entry


def to_items(entries: Sequence[StreamEntry]) -> list[Item]:
    """The items of ``entries``, leaving out those deleted since delivery (no fields)."""
    return [to_item(entry_id, fields) for entry_id, fields in entries if fields]


def _is_missing_group(error: ResponseError) -> bool:
    return str(error).startswith("NOGROUP")


class StreamConsumer:
    def __init__(
        self,
        redis: RedisClient,
        *,
        stream_name: str,
        group: str,
        consumer: str,
        batch_size: int,
        block_ms: int,
    ) -> None:
        self._redis = redis
        self.stream_name = stream_name
        self.group = group
        self.consumer = consumer
        self._batch_size = batch_size
        self._block_ms = block_ms

    async def ensure_group(self) -> None:
        """Create the group reading from the stream's start (and the stream if missing)."""
        try:
            await self._redis.xgroup_create(self.stream_name, self.group, id="0", mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise
        else:
            log.info(
                "consumer group created",
                extra={"stream": self.stream_name, "group": self.group},
            )

    async def read_new(self, acknowledging: Sequence[bytes] = ()) -> list[StreamEntry]:
        """Entries never delivered to the group, waiting up to ``block_ms`` for some.

        ``acknowledging``: entries of the batch just committed, XACKed in the same
        round trip, before the read (one write to Redis and one wake-up of it per
        batch instead of two: the projector's sends to Redis were an eighth of its
        CPU at full load).
        """
        return await self._read(">", block=self._block_ms, acknowledging=acknowledging)

    async def read_own_pending(self) -> list[StreamEntry]:
        """Entries delivered to this consumer but not acknowledged (a failed earlier try)."""
        return await self._read("0", block=None)

    async def _read(
        self, start: str, block: int | None, acknowledging: Sequence[bytes] = ()
    ) -> list[StreamEntry]:
        read: dict[str, Any] = {
            "groupname": self.group,
            "consumername": self.consumer,
            "streams": {self.stream_name: start},
            "count": self._batch_size,
            "block": block,
        }
        try:
            if acknowledging:
                pipe = self._redis.pipeline(transaction=False)
                pipe.xack(self.stream_name, self.group, *acknowledging)
                pipe.xreadgroup(**read)
                # Raised here, not by redis-py: it would prefix the error's message with the
                # command's number, and a vanished group is told by how the message starts.
                answers = await pipe.execute(raise_on_error=False)
                for answer in answers:
                    if isinstance(answer, Exception):
                        raise answer
                response = answers[-1]
            else:
                response = await self._redis.xreadgroup(**read)
        except ResponseError as error:
            if not _is_missing_group(error):
                raise
            # Gone with whatever was to be acknowledged: nothing is left to acknowledge.
            log.warning(
                "stream or consumer group gone (Redis flushed or restarted?); recreating it",
                extra={"stream": self.stream_name, "group": self.group},
            )
            await self.ensure_group()
            return []
        return _entries_of(response)

    async def claim_abandoned(self, min_idle_ms: int) -> AsyncIterator[list[StreamEntry]]:
        """Take over, batch by batch, entries another consumer left pending too long."""
        start: bytes | str = "0-0"
        while True:
            try:
                response = await self._redis.xautoclaim(
                    self.stream_name,
                    self.group,
                    self.consumer,
                    min_idle_time=min_idle_ms,
                    start_id=start,
                    count=self._batch_size,
                )
            except ResponseError as error:
                if not _is_missing_group(error):
                    raise
                await self.ensure_group()
                return
            start, claimed = response[0], [(i, f or {}) for i, f in response[1]]
            if claimed:
                log.info(
                    "claimed pending entries of another consumer",
                    extra={"entries": len(claimed), "first_entry_id": claimed[0][0].decode()},
                )
                yield claimed
            if start in (b"0-0", "0-0"):
                return

    async def forget_idle_consumers(self, min_idle_ms: int) -> None:
        """Drop consumers of earlier processes that hold nothing, so the group stays tidy."""
        try:
            consumers: list[dict[str, Any]] = await self._redis.xinfo_consumers(
                self.stream_name, self.group
            )
        except ResponseError as error:
            if _is_missing_group(error):
                return
            raise
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            idle = consumer["pending"] == 0 and consumer["idle"] > min_idle_ms
            if idle and name != self.consumer:
                await self._redis.xgroup_delconsumer(self.stream_name, self.group, name)

    async def ack(self, entry_ids: Sequence[bytes]) -> None:
        if not entry_ids:
            return
        try:
            await self._redis.xack(self.stream_name, self.group, *entry_ids)
        except ResponseError as error:
            if not _is_missing_group(error):
                raise
            # The group is gone with the entries; there is nothing left to acknowledge.


def _entries_of(response: Any) -> list[StreamEntry]:
    """The entries of an XREADGROUP answer (RESP2, the protocol the client is built with)."""
    entries: list[StreamEntry] = []
    for _stream, stream_entries in response or ():
        entries.extend((entry_id, fields or {}) for entry_id, fields in stream_entries)
    return entries
