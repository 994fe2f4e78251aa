"""Replaying the event store into a projection's tables in a given schema, in large batches.

The same ``apply`` the live projector runs writes the rows, through the same
stream isolation (:mod:`projector.isolation`): each batch is one transaction
(or a savepoint of the caller's) that puts the schema first on the
``search_path``, applies the batch in one set-based call, and records how far
it got through ``save`` in the same transaction, so a run killed at any moment
resumes exactly where its tables are. An event the projection refuses blocks
its stream in the schema's own ``projection_blocks`` (its later events are
held), as the live projector would; see :mod:`projector.rebuild.build_blocks`.

With a second connection (``reader``) the next batch is read from the store
while the current one is applied: committed events up to ``up_to`` never
change, so reading them outside the batch's transaction is safe, and the
database and Python work at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg import AsyncConnection

from projector.batch import recorded_event
from projector.blocks import NewBlock
from projector.checkpoints import Checkpoints
from projector.isolation import BatchRefused, StreamIsolation, Undecodable, describe
from projector.projections import Projection, RecordedEvent
from projector.rebuild.build_blocks import has_blocks_table
from projector.rebuild.tables import put_first_on_path
from shared_kernel.event_log import LogEntry, read_log

#: Records, inside the batch's transaction, the position reached and the events read so far.
SaveProgress = Callable[[AsyncConnection[Any], int, int], Awaitable[None]]
#: Told after each committed batch: events read so far.
OnBatch = Callable[[int], None]


class MissingBlocksTable(LookupError):
    """The schema has no ``projection_blocks``: its blocks would land in the live table."""


@dataclass(frozen=True)
class Replayed:
    position: int
    events_done: int
    blocked: tuple[NewBlock, ...] = ()
    """Streams this call blocked (their later events are held in the schema's blocks)."""


async def replay_into(
    conn: AsyncConnection[Any],
    projection: Projection,
    schema: str,
    *,
    after: int,
    up_to: int,
    batch_size: int,
    events_done: int,
    save: SaveProgress,
    on_batch: OnBatch | None = None,
    reader: AsyncConnection[Any] | None = None,
) -> Replayed:
    """Apply the log's events in (``after``, ``up_to``] to ``schema``'s copies of the tables."""
    if not await has_blocks_table(conn, schema):
        msg = f"schema {schema} has no projection_blocks table; refusing to write the live one"
        raise MissingBlocksTable(msg)
    isolation = StreamIsolation([projection])
    source = reader or conn
    position = after
    blocked: list[NewBlock] = []
    ahead: asyncio.Task[list[LogEntry]] | None = None
    try:
        while position < up_to:
            if ahead is None:
                entries = await read_log(source, position, batch_size, up_to=up_to)
            else:
                entries, ahead = await ahead, None
            if reader is not None and len(entries) == batch_size:
                following = entries[-1].position
                ahead = asyncio.create_task(read_log(reader, following, batch_size, up_to=up_to))
            async with conn.transaction():
                await put_first_on_path(conn, schema)
                blocked += await _apply(conn, isolation, projection, position, entries)
                # A short batch read everything up to `up_to`: holes at the end are passed.
                position = entries[-1].position if len(entries) == batch_size else up_to
                events_done += len(entries)
                await save(conn, position, events_done)
            if on_batch is not None:
                on_batch(events_done)
    finally:
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead
    return Replayed(position, events_done, tuple(blocked))


async def _apply(
    conn: AsyncConnection[Any],
    isolation: StreamIsolation,
    projection: Projection,
    after: int,
    entries: list[LogEntry],
) -> list[NewBlock]:
    """Decode and apply ``entries`` (all after ``after``) as a projector batch would."""
    events: list[RecordedEvent] = []
    undecodable: list[Undecodable] = []
    for entry in entries:
        try:
            events.append(recorded_event(entry))
        except (msgspec.MsgspecError, ValueError) as error:
            undecodable.append(Undecodable(entry, describe(error)))
    checkpoints = Checkpoints(positions={projection.NAME: after}, last_event_at=None)
    try:
        async with conn.transaction():
            isolated = await isolation.apply(conn, events, undecodable, checkpoints)
    except BatchRefused:  # rolled back to before the batch: apply it isolating
        isolated = await isolation.apply(conn, events, undecodable, checkpoints, isolate=True)
    return isolated.blocks
