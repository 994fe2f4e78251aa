"""``saga_positions``: how far the transfer saga has followed and swept the event log.

Also the sweep's question: which transfers, requested after the last sweep's
mark, have not reached an end?
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from shared_kernel.language.events import (
    TransferCompleted,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
)
from shared_kernel.language.upcasting import wire_names
from shared_kernel.settings import EVENTS_TABLE
from shared_kernel.unsynced_writes import execute_unsynced

#: The row of the saga in ``saga_positions``.
SAGA_NAME = "transfers"

_SELECT = "SELECT position, swept_to FROM saga_positions WHERE saga = %s"
_SAVE_POSITION = (
    "INSERT INTO saga_positions (saga, position) SELECT %s::text, %s::bigint FROM unsynced"
    " ON CONFLICT (saga) DO UPDATE"
    " SET position = GREATEST(saga_positions.position, EXCLUDED.position), updated_at = now()"
)
_SAVE_SWEPT = (
    "INSERT INTO saga_positions (saga, position, swept_to)"
    " SELECT %s::text, 0, %s::bigint FROM unsynced"
    " ON CONFLICT (saga) DO UPDATE SET swept_to = EXCLUDED.swept_to, updated_at = now()"
)
# Requests after the mark (a range of the notification_id index), minus those whose
# stream holds a terminal event (each probe is a primary-key range of 2-3 rows).
_UNFINISHED = (
    f"SELECT r.notification_id, r.originator_id FROM {EVENTS_TABLE} r"
    " WHERE r.notification_id > %(after)s AND r.topic = ANY(%(requested)s) AND NOT EXISTS ("
    f"  SELECT 1 FROM {EVENTS_TABLE} t WHERE t.originator_id = r.originator_id"
    "   AND t.topic = ANY(%(terminal)s))"
    " ORDER BY r.notification_id LIMIT %(limit)s"
)
_REQUESTED_TOPICS = list(wire_names(TransferRequested))
_TERMINAL_TOPICS = [
    name for ended in (TransferCompleted, TransferRefunded, TransferFailed)
    for name in wire_names(ended)
]  # fmt: skip


async def load_saga_position(conn: AsyncConnection[Any]) -> tuple[int, int]:
    """(position, swept_to); (0, 0) before the first run."""
    cursor = await conn.execute(_SELECT, (SAGA_NAME,))
    row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def save_saga_position(conn: AsyncConnection[Any], position: int) -> None:
    """Record ``position``; never moves backwards (a stale saga cannot rewind it).

    Committed without an fsync: a crash that loses it only makes the saga look
    at some transfer events again, whose repeated steps the version key refuses.
    """
    await execute_unsynced(conn, _SAVE_POSITION, (SAGA_NAME, position))


async def save_swept_to(conn: AsyncConnection[Any], swept_to: int) -> None:
    """Record the sweep's mark, without an fsync: losing it means sweeping again."""
    await execute_unsynced(conn, _SAVE_SWEPT, (SAGA_NAME, swept_to))


async def unfinished_transfers(
    conn: AsyncConnection[Any], after: int, limit: int
) -> list[tuple[int, UUID]]:
    """(position, id) of up to ``limit`` transfers requested after ``after``, not yet ended."""
    cursor = await conn.execute(
        _UNFINISHED,
        {
            "requested": _REQUESTED_TOPICS,
            "after": after,
            "terminal": _TERMINAL_TOPICS,
            "limit": limit,
        },
    )
    return [(int(position), transfer_id) for position, transfer_id in await cursor.fetchall()]
