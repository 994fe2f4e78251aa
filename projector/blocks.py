"""``projection_blocks``: the streams each projection holds back after refusing one of their events.

A projection that cannot apply an event of a stream must not apply that
stream's later events either (a balance without its opening, a transfer
completed without its debit would be lies), nor stop every other stream. So
the stream is blocked for that projection: the row is written in the batch
transaction that moves the checkpoint past the event, later events of the
stream are counted as ``held`` there while the checkpoint passes them, and
the event store keeps them all for the replay (:mod:`projector.dead_letters`).
Every function here runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

#: One blocked stream of one projection.
BlockKey = tuple[str, UUID]

#: The columns of ``projection_blocks``, in table order.
COLUMNS = (
    "projection, stream_id, position, event_type, reason, blocked_at, held, last_held_position,"
    " replay_failed_at, replay_error"
)
_OF_STREAMS = (
    "SELECT projection, stream_id, position FROM projection_blocks WHERE stream_id = ANY(%s)"
)
_INSERT = (
    "INSERT INTO projection_blocks (projection, stream_id, position, event_type, reason)"
    " SELECT * FROM unnest(%s::text[], %s::uuid[], %s::bigint[], %s::text[], %s::text[])"
    " ON CONFLICT (projection, stream_id) DO NOTHING"
)
_HOLD = (
    "UPDATE projection_blocks AS b SET held = b.held + h.held,"
    " last_held_position = GREATEST(b.last_held_position, h.last_position)"
    " FROM unnest(%s::text[], %s::uuid[], %s::bigint[], %s::bigint[])"
    " AS h (projection, stream_id, held, last_position)"
    " WHERE b.projection = h.projection AND b.stream_id = h.stream_id"
)
_COUNTS = "SELECT projection, count(*) FROM projection_blocks GROUP BY projection"


@dataclass(frozen=True, slots=True)
class Block:
    """One row of ``projection_blocks``."""

    projection: str
    stream_id: UUID
    position: int
    event_type: str
    reason: str
    blocked_at: datetime
    held: int
    last_held_position: int | None
    replay_failed_at: datetime | None
    replay_error: str | None


@dataclass(frozen=True, slots=True)
class NewBlock:
    projection: str
    stream_id: UUID
    position: int
    event_type: str
    reason: str


async def blocked_among(
    conn: AsyncConnection[Any], stream_ids: Iterable[UUID]
) -> dict[BlockKey, int]:
    """Which of ``stream_ids`` are blocked for which projection, from which position on."""
    wanted = list(set(stream_ids))
    if not wanted:
        return {}
    cursor = await conn.execute(_OF_STREAMS, (wanted,))
    return {(str(name), stream): int(at) for name, stream, at in await cursor.fetchall()}


async def record_blocks(conn: AsyncConnection[Any], blocks: Sequence[NewBlock]) -> None:
    if not blocks:
        return
    columns = zip(
        *((b.projection, b.stream_id, b.position, b.event_type, b.reason) for b in blocks),
        strict=True,
    )
    await conn.execute(_INSERT, [list(column) for column in columns])


async def record_held(conn: AsyncConnection[Any], held: Mapping[BlockKey, list[int]]) -> None:
    """Count the positions the checkpoint passes without applying them to their blocked stream."""
    if not held:
        return
    keys = list(held)
    await conn.execute(
        _HOLD,
        (
            [projection for projection, _ in keys],
            [stream for _, stream in keys],
            [len(held[key]) for key in keys],
            [max(held[key]) for key in keys],
        ),
    )


async def read_blocks(
    conn: AsyncConnection[Any],
    *,
    position: int | None = None,
    lock: bool = False,
    schema: str | None = None,
) -> list[Block]:
    """Every block (those first refused at ``position`` only, if given), oldest first.

    ``schema`` reads the table of that schema (a rebuild keeps its own beside the live one).
    """
    table = sql.Identifier(*(() if schema is None else (schema,)), "projection_blocks")
    query = f"SELECT {COLUMNS} FROM {table.as_string(conn)}"
    params: tuple[Any, ...] = ()
    if position is not None:
        query += " WHERE position = %s"
        params = (position,)
    query += " ORDER BY position, projection" + (" FOR UPDATE" if lock else "")
    cursor = conn.cursor(row_factory=class_row(Block))
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def unblock(conn: AsyncConnection[Any], block: Block) -> None:
    await conn.execute(
        "DELETE FROM projection_blocks WHERE projection = %s AND stream_id = %s",
        (block.projection, block.stream_id),
    )


async def replay_failed(conn: AsyncConnection[Any], block: Block, error: str) -> None:
    await conn.execute(
        "UPDATE projection_blocks SET replay_failed_at = now(), replay_error = %s"
        " WHERE projection = %s AND stream_id = %s",
        (error, block.projection, block.stream_id),
    )


async def blocked_counts(conn: AsyncConnection[Any]) -> dict[str, int]:
    """Blocked streams per projection (only projections that have some)."""
    cursor = await conn.execute(_COUNTS)
    return {str(name): int(count) for name, count in await cursor.fetchall()}
