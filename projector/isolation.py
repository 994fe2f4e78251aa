"""Applying a batch so that one stream's poison stops only that stream, in that projection.

All projections try the whole batch first, with no savepoint (the everyday
path: no round trip beyond reading the blocks). When that fails, the batch's
transaction is rolled back and run again isolating: each projection tries its
own events in its own savepoint, and a projection that refuses them goes one
event at a time. An event it refuses blocks its stream for it
(:mod:`projector.blocks`): the event is parked in the dead-letter stream, and
that projection applies none of the stream's later events (they are *held*,
counted in the block row and kept by the store) until a replay. The other
projections, and the other streams, go on.

Only events the store holds can block: an entry Redis made up (a position
that is a hole in the store, a stream or version the store does not have
there) is dead-lettered and nothing else, since no later real event depends
on it. An event no code here can decode blocks its stream in every projection.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from projector.blocks import BlockKey, NewBlock, blocked_among, record_blocks, record_held
from projector.checkpoints import Checkpoints
from projector.dead_letters import Poison
from projector.projections import Projection, RecordedEvent
from projector.projections.queued_writes import QueuedWrites
from shared_kernel.event_log import LogEntry
from shared_kernel.outages import OUTAGES
from shared_kernel.settings import EVENTS_TABLE

log = logging.getLogger(__name__)

_STORED = (
    f"SELECT notification_id FROM {EVENTS_TABLE} AS e"
    " JOIN unnest(%s::bigint[], %s::uuid[], %s::bigint[]) AS t (position, stream, version)"
    " ON e.notification_id = t.position AND e.originator_id = t.stream"
    " AND e.originator_version = t.version"
)


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A stream entry that parses but whose event no code here can decode."""

    entry: LogEntry
    error: str


class BatchRefused(Exception):
    """A projection refused the batch applied whole; its transaction must be rolled back."""


@dataclass
class Isolated:
    """What a batch did beyond applying: parked, newly blocked and held events."""

    poison: dict[int, Poison] = field(default_factory=dict)
    blocks: list[NewBlock] = field(default_factory=list)
    held: dict[BlockKey, list[int]] = field(default_factory=lambda: defaultdict(list))

    @property
    def held_count(self) -> int:
        return sum(len(positions) for positions in self.held.values())

    def refuse(self, position: int, error: str, fields: Any) -> None:
        """Park ``position`` (once, naming every projection that refused it)."""
        earlier = self.poison.get(position)
        text = error if earlier is None else f"{earlier.error}; {error}"
        self.poison[position] = Poison(position, text, fields)


def refused(events: Sequence[RecordedEvent], error: Exception) -> BatchRefused:
    """The :class:`BatchRefused` of a batch a projection's apply or its writes failed."""
    log.warning(
        "batch refused; isolating the poison per projection and stream",
        extra={
            "first_position": events[0].position if events else None,
            "last_position": events[-1].position if events else None,
            "error": describe(error),
        },
    )
    return BatchRefused()


async def try_apply(
    conn: AsyncConnection[Any], projection: Projection, events: Sequence[RecordedEvent]
) -> Exception | None:
    """Apply ``events`` in a savepoint; the error when the projection refused them (rolled back).

    An outage is no refusal: it is raised.
    """
    try:
        async with conn.transaction():
            await projection.apply(conn, events)
    except OUTAGES:
        raise
    except Exception as error:
        return error
    return None


async def stored(conn: AsyncConnection[Any], entries: Sequence[LogEntry]) -> set[int]:
    """The positions of ``entries`` the store holds as they are (same stream and version)."""
    if not entries:
        return set()
    params = ([e.position for e in entries], [e.stream_id for e in entries],
              [e.version for e in entries])  # fmt: skip
    cursor = await conn.execute(_STORED, params)
    return {int(position) for (position,) in await cursor.fetchall()}


class StreamIsolation:
    """Applies a batch's decoded events to every live projection, blocking poisoned streams."""

    def __init__(self, projections: Sequence[Projection]) -> None:
        self._projections = list(projections)

    async def apply(
        self,
        conn: AsyncConnection[Any],
        events: Sequence[RecordedEvent],
        undecodable: Sequence[Undecodable],
        checkpoints: Checkpoints,
        *,
        isolate: bool = False,
        blocked: dict[BlockKey, int] | None = None,
        writes: QueuedWrites | None = None,
    ) -> Isolated:
        """Apply ``events`` to every live projection; ``isolate`` once the whole batch was refused.

        Not isolating, the projections' row writes are queued: in ``writes`` when given,
        for the caller to send (and to raise :func:`refused` if they fail), else sent here.
        """
        live = [p for p in self._projections if p.NAME not in checkpoints.stale]
        if blocked is None:  # else read by the caller, for these streams or more
            streams = [e.event.originator_id for e in events]
            streams += [u.entry.stream_id for u in undecodable]
            blocked = await blocked_among(conn, streams)
        outcome = Isolated()
        real = await stored(conn, [bad.entry for bad in undecodable])
        for bad in undecodable:
            outcome.refuse(bad.entry.position, bad.error, bad.entry.to_fields())
            if bad.entry.position in real:
                for projection in live:
                    if bad.entry.position > checkpoints.positions[projection.NAME]:
                        self._block(projection, bad.entry, bad.error, blocked, outcome)
        plans = self._runnable(live, events, checkpoints, blocked, outcome)
        runnable = any(plans.values())
        if runnable and not isolate:
            await self._whole(conn, live, plans, events, writes)
        elif runnable:
            await self._drop_made_up(conn, events, plans, outcome)
            for projection in live:
                await self._one_projection(conn, projection, plans[projection.NAME], blocked,
                                           outcome)  # fmt: skip
        await record_blocks(conn, outcome.blocks)
        await record_held(conn, outcome.held)
        return outcome

    @staticmethod
    async def _whole(
        conn: AsyncConnection[Any],
        live: Sequence[Projection],
        plans: dict[str, list[RecordedEvent]],
        events: Sequence[RecordedEvent],
        writes: QueuedWrites | None,
    ) -> None:
        """Every projection applies its plan with no savepoint: the batch's own transaction
        is the unit, and a refusal rolls all of it back for the caller to run it isolating."""
        queued = QueuedWrites() if writes is None else writes
        try:
            with queued.collecting():
                for projection in live:
                    if plans[projection.NAME]:
                        await projection.apply(conn, plans[projection.NAME])
            if writes is None:
                await queued.send(conn)
        except OUTAGES:
            raise
        except Exception as error:
            raise refused(events, error) from error

    @staticmethod
    async def _drop_made_up(
        conn: AsyncConnection[Any],
        events: Sequence[RecordedEvent],
        plans: dict[str, list[RecordedEvent]],
        outcome: Isolated,
    ) -> None:
        """Take entries the store does not hold out of every plan: no projection may apply them.

        Checked only once a batch was refused, so the everyday path pays nothing.
        """
        real = await stored(conn, [recorded.entry for recorded in events])
        made_up = {recorded.position for recorded in events if recorded.position not in real}
        for recorded in events:
            if recorded.position in made_up:
                error = "not in the event store at this position (stream and version)"
                outcome.refuse(recorded.position, error, recorded.entry.to_fields())
        for name, plan in plans.items():
            plans[name] = [recorded for recorded in plan if recorded.position not in made_up]

    @staticmethod
    def _runnable(
        live: Sequence[Projection],
        events: Sequence[RecordedEvent],
        checkpoints: Checkpoints,
        blocked: dict[BlockKey, int],
        outcome: Isolated,
    ) -> dict[str, list[RecordedEvent]]:
        """Per projection, the events it should apply now; those of its blocked streams are held.

        One pass over the batch: which projections handle an event type is worked
        out once per type (a catch-up batch holds thousands of events of a few types).
        """
        plans: dict[str, list[RecordedEvent]] = {p.NAME: [] for p in live}
        each = [(p.NAME, p.HANDLES, checkpoints.positions[p.NAME], plans[p.NAME]) for p in live]
        handling: dict[type, list[tuple[str, int, list[RecordedEvent]]]] = {}
        for recorded in events:
            kind = type(recorded.event)
            handlers = handling.get(kind)
            if handlers is None:
                handlers = handling[kind] = [
                    (name, start, plan) for name, handles, start, plan in each
                    if issubclass(kind, handles)
                ]  # fmt: skip
            for name, start, plan in handlers:
                if recorded.position <= start:
                    continue
                if blocked:
                    key = (name, recorded.event.originator_id)
                    if recorded.position > blocked.get(key, recorded.position):
                        outcome.held[key].append(recorded.position)
                        continue
                plan.append(recorded)
        return plans

    async def _one_projection(
        self,
        conn: AsyncConnection[Any],
        projection: Projection,
        events: list[RecordedEvent],
        blocked: dict[BlockKey, int],
        outcome: Isolated,
    ) -> None:
        if not events or await try_apply(conn, projection, events) is None:
            return
        for recorded in events:  # judged event by event
            key = (projection.NAME, recorded.event.originator_id)
            if recorded.position > blocked.get(key, recorded.position):
                outcome.held[key].append(recorded.position)
                continue
            error = await try_apply(conn, projection, [recorded])
            if error is not None:
                reason = f"{projection.NAME}: {describe(error)}"
                outcome.refuse(recorded.position, reason, recorded.entry.to_fields())
                self._block(projection, recorded.entry, reason, blocked, outcome)

    @staticmethod
    def _block(
        projection: Projection,
        entry: LogEntry,
        reason: str,
        blocked: dict[BlockKey, int],
        outcome: Isolated,
    ) -> None:
        key = (projection.NAME, entry.stream_id)
        if key in blocked:
            return
        blocked[key] = entry.position
        outcome.blocks.append(NewBlock(projection.NAME, entry.stream_id, entry.position,
                                       entry.topic, reason))  # fmt: skip
        log.error(
            "stream blocked: the projection holds its later events until a replay",
            extra={
                "projection": projection.NAME,
                "stream_id": str(entry.stream_id),
                "position": entry.position,
                "event_type": entry.topic,
                "error": reason,
            },
        )
