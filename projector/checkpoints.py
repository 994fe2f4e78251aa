"""``projection_checkpoints``: how far each projection has applied the log.

Rows are locked (``FOR UPDATE``) at the start of every batch transaction, so
two projector processes (or a catch-up beside the stream) never apply the
same positions at once: the second waits, then sees the first's checkpoint
and skips what it already did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from shared_kernel.settings import PROJECTION_CHANNEL

_ENSURE = (
    "INSERT INTO projection_checkpoints (projection, position)"
    " SELECT unnest(%s::text[]), 0 ON CONFLICT (projection) DO NOTHING"
)
_SELECT = (
    "SELECT projection, position, last_event_at FROM projection_checkpoints"
    " WHERE projection = ANY(%s) ORDER BY projection"
)
_ADVANCE = (
    "INSERT INTO projection_checkpoints (projection, position, last_event_at)"
    " SELECT unnest(%s::text[]), %s::bigint, %s::timestamptz"
    # GREATEST: a batch that catches up a projection added later passes positions
    # the others applied long ago; it must never move THEIR checkpoints back.
    " ON CONFLICT (projection) DO UPDATE"
    " SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position),"
    " last_event_at = GREATEST(EXCLUDED.last_event_at, projection_checkpoints.last_event_at),"
    " updated_at = now()"
)


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """The checkpoint of each projection; they move together, but a new one starts at 0."""

    positions: dict[str, int]
    last_event_at: datetime | None
    complete: bool = True
    """False when a projection has no row yet (nothing to lock for it)."""

    @property
    def floor(self) -> int:
        """The lowest checkpoint: every position at or below it is applied everywhere."""
        return min(self.positions.values(), default=0)


async def ensure_checkpoints(conn: AsyncConnection[Any], names: Sequence[str]) -> None:
    """Give every registered projection a row, so ``FOR UPDATE`` always has one to lock."""
    await conn.execute(_ENSURE, (list(names),))


async def read_checkpoints(
    conn: AsyncConnection[Any], names: Sequence[str], *, lock: bool = False
) -> Checkpoints:
    cursor = await conn.execute(_SELECT + (" FOR UPDATE" if lock else ""), (list(names),))
    rows = await cursor.fetchall()
    found = {name: int(position) for name, position, _ in rows}
    times = [at for _, _, at in rows if at is not None]
    return Checkpoints(
        positions={name: found.get(name, 0) for name in names},
        last_event_at=max(times, default=None),
        complete=len(found) == len(names),
    )


async def lock_checkpoints(conn: AsyncConnection[Any], names: Sequence[str]) -> Checkpoints:
    """Read and lock every checkpoint row until the transaction ends, creating missing rows.

    A missing row cannot be locked, so two transactions could both start from
    0; creating it first makes the second wait for the first and then read
    the first's committed position.
    """
    checkpoints = await read_checkpoints(conn, names, lock=True)
    if not checkpoints.complete:
        await ensure_checkpoints(conn, names)
        checkpoints = await read_checkpoints(conn, names, lock=True)
    return checkpoints


async def advance_checkpoints(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    position: int,
    last_event_at: datetime | None,
) -> None:
    """Move every projection up to ``position`` (none back) and tell LISTENers at commit."""
    await conn.execute(_ADVANCE, (list(names), position, last_event_at))
    await conn.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, str(position)))
