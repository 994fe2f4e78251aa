"""Who is rebuilding a projection: a session advisory lock per projection name.

Held by the rebuild's own connection for as long as it runs, so a rebuild
killed with ``kill -9`` releases it when PostgreSQL notices the connection is
gone, and a new run can resume; two runs of one projection (the CLI and the
admin route, two projector processes) never overlap.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

#: First key of the two-key advisory lock; the second is hashtext(projection name).
REBUILD_LOCK_CLASS = 0x4EB1D


async def try_lock(conn: AsyncConnection[Any], projection: str) -> bool:
    cursor = await conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (REBUILD_LOCK_CLASS, projection)
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def unlock(conn: AsyncConnection[Any], projection: str) -> None:
    await conn.execute(
        "SELECT pg_advisory_unlock(%s, hashtext(%s))", (REBUILD_LOCK_CLASS, projection)
    )


async def is_running(conn: AsyncConnection[Any], projection: str) -> bool:
    """True while some session holds the rebuild lock of ``projection``."""
    cursor = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = %s::integer::oid AND objid = hashtext(%s)::oid AND objsubid = 2"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        (REBUILD_LOCK_CLASS, projection),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])
