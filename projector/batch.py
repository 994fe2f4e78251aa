"""Applying a run of log entries to every projection in ONE PostgreSQL transaction.

The same code serves entries from the Redis Stream and events read back from
the store during a catch-up, so both paths give the same read models. In one
transaction it locks the checkpoints, skips what is already applied, applies
the rest batched per projection, parks poison events in the dead-letter
stream (blocking the stream of each real one for the projection that refused
it, see :mod:`projector.isolation`), advances the checkpoints and NOTIFYs the
new position. Nothing is
acknowledged on Redis here: the caller XACKs after this commits.

A projection whose tables another version of its code built (stale, see
:mod:`projector.checkpoints`) is left out of the batch: its checkpoint neither
holds the others back nor moves, until a rebuild swaps in tables of this version.

It stops at the first entry whose ``previous`` lies beyond the checkpoint:
Redis lost the events in between, and the caller must fetch them from the
store before that entry can be applied.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection

from projector.batch_start import start_batch
from projector.blocks import NewBlock
from projector.checkpoints import Checkpoints, advance_checkpoints
from projector.dead_letters import DeadLetters, Poison
from projector.isolation import BatchRefused, StreamIsolation, Undecodable, describe, refused
from projector.projections import Projection, RecordedEvent
from projector.projections.queued_writes import QueuedWrites
from shared_kernel.event_log import LogEntry, PositionMarker
from shared_kernel.language.events import decode_event
from shared_kernel.outages import OUTAGES

log = logging.getLogger(__name__)

__all__ = ["OUTAGES", "BatchApplier", "BatchOutcome", "Item", "Unreadable"]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stream entry that cannot even be decoded: it goes straight to the dead letters.

    ``advances_checkpoint`` is False for an entry claiming a position the store
    has not reached: moving the checkpoint there would skip real events later.
    """

    position: int
    fields: Mapping[Any, Any]
    error: str
    advances_checkpoint: bool = True


Item = LogEntry | PositionMarker | Unreadable


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    consumed: int
    """How many leading items were handled (applied, skipped or dead-lettered)."""
    checkpoint: int
    last_event_at: datetime | None
    applied: int
    dead_lettered: tuple[Poison, ...] = ()
    blocked: tuple[NewBlock, ...] = ()
    """Streams a projection refused an event of in this batch (see :mod:`projector.blocks`)."""
    held: int = 0
    """Events of blocked streams the checkpoint passed without applying them."""
    gap_before: int | None = None
    """Set when ``items[consumed]`` needs the store's events up to this position first."""
    store_head: int = 0
    """The store's newest position as the batch saw it."""


def recorded_event(entry: LogEntry) -> RecordedEvent:
    """Decode ``entry``; raises for an unknown type, bad bytes, or fields that disagree."""
    event = decode_event(entry.topic, entry.data)
    if event.originator_id != entry.stream_id or event.originator_version != entry.version:
        msg = "the entry's stream or version field disagrees with its event data"
        raise ValueError(msg)
    return RecordedEvent(entry.position, event, entry)


#: Entries that name the one before them (a tuple: isinstance on a union type is slower).
_CHAINED = (LogEntry, PositionMarker)


def missing_before(item: Item, checkpoint: int) -> int | None:
    """The position up to which the store must be read before ``item``; None if nothing."""
    if isinstance(item, _CHAINED):
        return item.previous if item.previous > checkpoint else None
    if item.advances_checkpoint and item.position - 1 > checkpoint:
        # An unreadable entry names no `previous`: whatever precedes it must come
        # from the store before the checkpoint may pass it.
        return item.position - 1
    return None


def within_store(item: Item, head: int) -> Item:
    """``item``, or an :class:`Unreadable` when it claims a position beyond the store's head.

    The relay only publishes stored events, so such an entry is bogus; letting it
    move the checkpoint would make every later real event look applied.
    """
    if item.position <= head:
        return item
    error = f"position {item.position} is beyond the event store's head {head}"
    if isinstance(item, _CHAINED):
        return Unreadable(item.position, item.to_fields(), error, advances_checkpoint=False)
    return replace(item, error=f"{item.error}; {error}", advances_checkpoint=False)


class BatchApplier:
    """Applies the entries of one partition of the log (see :mod:`shared_kernel.partitions`)."""

    def __init__(
        self,
        projections: Sequence[Projection],
        dead_letters: DeadLetters,
        *,
        partition: int = 0,
        partitions: int = 1,
    ) -> None:
        self.partition = partition
        self.partitions = partitions
        self.projections = list(projections)
        self.names = [projection.NAME for projection in self.projections]
        self.versions = {projection.NAME: projection.VERSION for projection in self.projections}
        self._dead_letters = dead_letters
        self._isolation = StreamIsolation(self.projections)

    @staticmethod
    async def _written(events: Sequence[RecordedEvent], sending: Awaitable[None]) -> None:
        """Await the statement that sends the queued writes; their failure refuses the batch."""
        try:
            await sending
        except OUTAGES:
            raise
        except Exception as error:
            raise refused(events, error) from error

    async def _advance(
        self, conn: AsyncConnection[Any], fresh: Sequence[RecordedEvent], writes: QueuedWrites,
        checkpoints: Checkpoints, *, position: int, last_event_at: datetime | None, blocked: bool,
    ) -> None:  # fmt: skip
        """Send the queued writes with the checkpoints' advance (alone if none moves)."""
        if position <= checkpoints.floor:
            await self._written(fresh, writes.send(conn))
            return
        advancing = advance_checkpoints(
            conn, list(checkpoints.live), position, last_event_at,
            partition=self.partition, partitions=self.partitions, blocked=blocked, writes=writes,
        )  # fmt: skip
        if writes:
            await self._written(fresh, advancing)
        else:
            await advancing

    async def apply(
        self, conn: AsyncConnection[Any], items: Sequence[Item], *, advance_to: int | None = None
    ) -> BatchOutcome:
        """Apply ``items`` (ascending positions) in one transaction on ``conn``.

        ``advance_to`` lets a catch-up that has read the store up to a position
        move the checkpoint there even when that position is a hole.
        """
        try:
            return await self._apply(conn, items, advance_to, isolate=False)
        except BatchRefused:
            return await self._apply(conn, items, advance_to, isolate=True)

    async def _apply(
        self, conn: AsyncConnection[Any], items: Sequence[Item], advance_to: int | None, *,
        isolate: bool,
    ) -> BatchOutcome:  # fmt: skip
        async with conn.transaction():
            start = await start_batch(
                conn, self.names, self.versions,
                [item.stream_id for item in items if isinstance(item, LogEntry)],
                partition=self.partition, partitions=self.partitions,
            )  # fmt: skip
            checkpoints = start.checkpoints
            position = checkpoints.floor
            fresh: list[RecordedEvent] = []
            undecodable: list[Undecodable] = []
            poison: list[Poison] = []
            consumed, gap_before = 0, None
            for listed in items:
                if listed.position <= position:
                    consumed += 1
                    continue
                item = within_store(listed, start.store_head)
                gap_before = missing_before(item, position)
                if gap_before is not None:
                    break
                consumed += 1
                if isinstance(item, Unreadable):
                    poison.append(Poison(item.position, item.error, item.fields))
                    if item.advances_checkpoint:
                        position = item.position
                    continue
                position = item.position
                if isinstance(item, PositionMarker):
                    continue
                try:
                    fresh.append(recorded_event(item))
                except (msgspec.MsgspecError, ValueError) as error:
                    undecodable.append(Undecodable(item, describe(error)))
            if gap_before is None and advance_to is not None:
                position = max(position, advance_to)

            writes = QueuedWrites()
            isolated = await self._isolation.apply(
                conn, fresh, undecodable, checkpoints, isolate=isolate, blocked=start.blocked,
                writes=writes,
            )  # fmt: skip
            poison.extend(isolated.poison.values())
            poison.sort(key=lambda item: item.position)
            if poison:
                # Sent before parking: a refused write reruns the batch, which would park twice.
                await self._written(fresh, writes.send(conn))
                await self._dead_letters.park(poison)
            applied = [recorded for recorded in fresh if recorded.position not in isolated.poison]
            last_event_at = applied[-1].event.timestamp if applied else checkpoints.last_event_at
            await self._advance(
                conn, fresh, writes, checkpoints, position=position, last_event_at=last_event_at,
                blocked=bool(isolated.blocks),
            )  # fmt: skip
        return BatchOutcome(
            consumed=consumed,
            checkpoint=max(position, checkpoints.floor),
            last_event_at=last_event_at,
            applied=len(applied),
            dead_lettered=tuple(poison),
            blocked=tuple(isolated.blocks),
            held=isolated.held_count,
            gap_before=gap_before,
            store_head=start.store_head,
        )
