"""Reading the event store's log in global order, and its wire format on Redis.

The log is the ``ledger_events`` table ordered by ``notification_id`` (the
*position*). Positions are in commit order but have holes (a rejected append
consumes a sequence value), so nobody may wait for a missing position.

Each event travels on the Redis Stream as one entry whose id is
``<position>-0``: re-publishing the same event is rejected by Redis rather
than duplicated. Every entry also names ``previous``, the position of the
event before it in the log, so a consumer whose checkpoint is below
``previous`` knows Redis lost something and catches up from the store.

With several partitions (:mod:`shared_kernel.partitions`) ``previous`` names
the entry before it *in its partition*, and a :class:`PositionMarker` tells a
partition that received nothing how far the relay has published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection

from shared_kernel.partitions import partition_of
from shared_kernel.settings import EVENTS_TABLE

_SELECT_AFTER = (
    "SELECT notification_id, originator_id, originator_version, topic, state"
    f" FROM {EVENTS_TABLE} WHERE notification_id > %s"
    " ORDER BY notification_id LIMIT %s"
)
_SELECT_RANGE = (
    "SELECT notification_id, originator_id, originator_version, topic, state"
    f" FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s"
    " ORDER BY notification_id LIMIT %s"
)
_SELECT_HEAD = f"SELECT COALESCE(MAX(notification_id), 0) FROM {EVENTS_TABLE}"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One recorded event at its global position, with its bytes as stored."""

    position: int
    previous: int
    stream_id: UUID
    version: int
    topic: str
    data: bytes

    @property
    def entry_id(self) -> str:
        return stream_entry_id(self.position)

    def to_fields(self) -> dict[str, str | bytes]:
        """The field map XADD sends."""
        return {
            "position": str(self.position),
            "previous": str(self.previous),
            "stream": str(self.stream_id),
            "version": str(self.version),
            "type": self.topic,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class PositionMarker:
    """A partition's entry with no event: the relay has published the log up to ``position``.

    The relay writes one, at the end of a batch, to every partition that did
    not get the batch's last event. Its consumer then advances the partition's
    checkpoints to ``position`` without applying anything, so a read waiting
    for position N never waits on a partition with no events near N. Its id
    ``<position>-0`` cannot collide: that position's event went to another partition.
    """

    position: int
    previous: int

    @property
    def entry_id(self) -> str:
        return stream_entry_id(self.position)

    def to_fields(self) -> dict[str, str | bytes]:
        return {"position": str(self.position), "previous": str(self.previous), "marker": "1"}


#: What a partition's entry stands for.
PublishedEntry = LogEntry | PositionMarker


class MalformedEntry(ValueError):
    """A stream entry lacks a field or carries one that does not parse."""


def stream_entry_id(position: int) -> str:
    return f"{position}-0"


def from_fields(fields: Mapping[Any, Any]) -> LogEntry:
    """Parse the fields of a stream entry read with ``decode_responses=False``.

    The consumers read bytes: that everyday entry is parsed straight from them
    (``int`` takes ASCII bytes), a projector's catch-up parses thousands a second;
    anything else (text fields, a missing or malformed one) takes the careful
    path, which names what is wrong.
    """
    try:
        return LogEntry(
            position=int(fields[b"position"]),
            previous=int(fields[b"previous"]),
            stream_id=UUID(fields[b"stream"].decode()),
            version=int(fields[b"version"]),
            topic=fields[b"type"].decode(),
            data=fields[b"data"],
        )
    except (KeyError, AttributeError, TypeError, ValueError):
        return _from_any_fields(fields)


def _from_any_fields(fields: Mapping[Any, Any]) -> LogEntry:
    def text(name: str) -> str:
        value = fields.get(name.encode(), fields.get(name))
        if value is None:
            raise MalformedEntry(f"missing field {name!r}")
        return value.decode() if isinstance(value, bytes) else str(value)

    data = fields.get(b"data", fields.get("data"))
    if data is None:
        raise MalformedEntry("missing field 'data'")
    try:
        return LogEntry(
            position=int(text("position")),
            previous=int(text("previous")),
            stream_id=UUID(text("stream")),
            version=int(text("version")),
            topic=text("type"),
            data=data if isinstance(data, bytes) else str(data).encode(),
        )
    except ValueError as error:
        raise MalformedEntry(str(error)) from error


def read_entry(fields: Mapping[Any, Any]) -> PublishedEntry:
    """Parse a stream entry: an event, or a partition's position marker."""
    if b"marker" not in fields and "marker" not in fields:
        return from_fields(fields)
    try:
        position = int(fields.get(b"position", fields.get("position")))
        previous = int(fields.get(b"previous", fields.get("previous")))
    except (TypeError, ValueError) as error:
        raise MalformedEntry(f"position marker: {error}") from error
    return PositionMarker(position, previous)


def of_partition(
    entries: Sequence[LogEntry], partition: int, partitions: int, *, after: int
) -> list[LogEntry]:
    """The entries of one partition, each naming the one before it there as ``previous``."""
    if partitions == 1:
        return list(entries)
    chosen = []
    for entry in entries:
        if partition_of(entry.stream_id, partitions) == partition:
            chosen.append(replace(entry, previous=after))
            after = entry.position
    return chosen


def _entries(rows: list[tuple[Any, ...]], previous: int) -> list[LogEntry]:
    entries = []
    for position, stream_id, version, topic, state in rows:
        entries.append(LogEntry(position, previous, stream_id, version, topic, bytes(state)))
        previous = position
    return entries


async def read_log(
    conn: AsyncConnection[Any], after: int, limit: int, *, up_to: int | None = None
) -> list[LogEntry]:
    """Up to ``limit`` events after position ``after`` (and at most ``up_to``)."""
    if up_to is None:
        cursor = await conn.execute(_SELECT_AFTER, (after, limit))
    else:
        cursor = await conn.execute(_SELECT_RANGE, (after, up_to, limit))
    return _entries(await cursor.fetchall(), after)


async def log_batches(
    conn: AsyncConnection[Any], after: int, batch_size: int, *, up_to: int | None = None
) -> AsyncIterator[list[LogEntry]]:
    """The events after ``after`` (and at most ``up_to``), ``batch_size`` at a time.

    Each batch is read when the one before has been handled; a batch shorter
    than ``batch_size`` is the last (what is appended meanwhile waits for the next call).
    """
    while True:
        entries = await read_log(conn, after, batch_size, up_to=up_to)
        if not entries:
            return
        yield entries
        if len(entries) < batch_size:
            return
        after = entries[-1].position


def read_log_sync(conn: Connection[Any], after: int, limit: int) -> list[LogEntry]:
    """Blocking twin of :func:`read_log`, for tools and tests."""
    return _entries(conn.execute(_SELECT_AFTER, (after, limit)).fetchall(), after)


async def head_position(conn: AsyncConnection[Any]) -> int:
    """The position of the newest event in the store (0 when empty)."""
    cursor = await conn.execute(_SELECT_HEAD)
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
