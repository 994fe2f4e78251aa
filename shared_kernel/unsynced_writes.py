"""Writing a follower's position without waiting for the disk.

The relay and the transfer saga record how far they followed the log after
every batch. Waiting for that commit's WAL flush (an fsync) is waiting for
nothing: if PostgreSQL crashes before the flush, the row falls back to an
older position and the follower repeats a stretch of the log, which is
harmless by design (the relay's re-published entries are refused by their
ids, the saga's repeated steps by the transfer stream's version key). The
events themselves are committed synchronously by the command side before
anyone reads them, and the WAL is written in order, so a position that
survives never points past an event that did not.

Never for the event store or the read models: their commits must be durable.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection


async def execute_unsynced(conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]) -> None:
    """Run ``query`` in a transaction of its own that commits without waiting for the flush.

    ``conn`` must be in autocommit mode (no transaction open): ``SET LOCAL`` would
    otherwise reach the caller's transaction.
    """
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.execute(query, params)
