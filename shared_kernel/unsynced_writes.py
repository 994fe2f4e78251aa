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

#: Opens every unsynced statement: turns the flush wait off for its own transaction only.
UNSYNCED = "WITH unsynced AS (SELECT set_config('synchronous_commit', 'off', true))"


async def execute_unsynced(conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]) -> None:
    """Run ``query`` as a transaction of its own that commits without waiting for the flush.

    One statement, one round trip: ``query`` follows :data:`UNSYNCED` and must read
    from ``unsynced`` (``INSERT ... SELECT ... FROM unsynced``), since PostgreSQL
    skips a ``WITH`` query nothing refers to. ``set_config(..., true)`` is local
    to the statement's own transaction, so ``conn`` must be in autocommit mode (no
    transaction open): it would otherwise reach the caller's transaction.
    """
    if "FROM unsynced" not in query:
        msg = f"an unsynced write must select FROM unsynced, else it waits for the flush: {query}"
        raise ValueError(msg)
    await conn.execute(f"{UNSYNCED} {query}", params)
