"""``relay_positions``: how far the relay published each stream, kept in PostgreSQL.

Redis can lose the stream and with it the relay's resume point; this row
keeps it, so a restarted relay never re-publishes all of history.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from shared_kernel.unsynced_writes import execute_unsynced

_SELECT = "SELECT position FROM relay_positions WHERE stream_name = %s"
_UPSERT = (
    "INSERT INTO relay_positions (stream_name, position) SELECT %s::text, %s::bigint FROM unsynced"
    " ON CONFLICT (stream_name) DO UPDATE"
    " SET position = GREATEST(relay_positions.position, EXCLUDED.position), updated_at = now()"
)


async def load_relay_position(conn: AsyncConnection[Any], stream_name: str) -> int:
    cursor = await conn.execute(_SELECT, (stream_name,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def save_relay_position(conn: AsyncConnection[Any], stream_name: str, position: int) -> None:
    """Record ``position``; never moves backwards (a stale relay cannot rewind it).

    Committed without an fsync: a crash that loses it only makes the relay
    publish some entries again, which Redis refuses by their ids.
    """
    await execute_unsynced(conn, _UPSERT, (stream_name, position))
