"""Replaying the event store into a projection's tables in a given schema, in large batches.

The same ``apply`` the live projector runs writes the rows: each batch is one
transaction (or a savepoint of the caller's) that puts the schema first on the
``search_path``, decodes only the events the projection handles, applies them
in one set-based call, and records how far it got through ``save`` in the same
transaction, so a run killed at any moment resumes exactly where its tables are.

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
from projector.projections import CannotProject, Projection
from projector.rebuild.tables import put_first_on_path
from shared_kernel.event_log import LogEntry, read_log

#: Records, inside the batch's transaction, the position reached and the events read so far.
SaveProgress = Callable[[AsyncConnection[Any], int, int], Awaitable[None]]
#: Told after each committed batch: events read so far.
OnBatch = Callable[[int], None]


class CannotRebuild(Exception):
    """An event of the store does not decode or does not fit the projection."""


@dataclass(frozen=True)
class Replayed:
    position: int
    events_done: int


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
    handled = {event_type.TOPIC for event_type in projection.HANDLES}
    source = reader or conn
    position = after
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
                await _apply(conn, projection, [e for e in entries if e.topic in handled])
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
    return Replayed(position, events_done)


async def _apply(
    conn: AsyncConnection[Any], projection: Projection, entries: list[LogEntry]
) -> None:
    if not entries:
        return
    try:
        await projection.apply(conn, [recorded_event(entry) for entry in entries])
    except (CannotProject, msgspec.MsgspecError, ValueError) as error:
        first, last = entries[0].position, entries[-1].position
        msg = (
            f"{projection.NAME} cannot apply the events at positions {first}..{last}:"
            f" {type(error).__name__}: {error}"
        )
        raise CannotRebuild(msg) from error
