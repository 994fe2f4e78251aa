"""What ``GET /admin/projections`` shows of each projection.

Its code's version and the version that built its live tables, its checkpoint
and how far it trails the store (in positions, and in seconds: the age of the
oldest event it has not applied), whether it is live, stale (built by another
version, left alone by the projector) or being rebuilt, and its last rebuild
with the streams that rebuild blocked (see :mod:`projector.rebuild.build_blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from projector.projections import Projection
from projector.rebuild import records
from projector.rebuild.build_blocks import build_blocks, shown
from projector.rebuild.lock import is_running
from projector.rebuild.records import RebuildRecord
from shared_kernel.event_log import head_position
from shared_kernel.language.events import utc_now
from shared_kernel.settings import EVENTS_TABLE

#: Per projection: the lowest partition's checkpoint (what it has reached) and each one's.
_CHECKPOINTS = (
    "SELECT projection, min(position), max(version),"
    " (array_agg(last_event_at ORDER BY position, partition))[1],"
    " array_agg(position ORDER BY partition)"
    " FROM projection_checkpoints WHERE projection = ANY(%s) GROUP BY projection"
)
_OLDEST_UNAPPLIED = (
    "SELECT (convert_from(state, 'UTF8')::jsonb->>'timestamp')::timestamptz"
    f" FROM {EVENTS_TABLE} WHERE notification_id > %s ORDER BY notification_id LIMIT 1"
)


async def _lag_seconds(conn: AsyncConnection[Any], checkpoint: int) -> float:
    cursor = await conn.execute(_OLDEST_UNAPPLIED, (checkpoint,))
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        return 0.0
    age: float = (utc_now() - row[0]).total_seconds()
    return max(0.0, round(age, 3))


async def rebuild_progress(conn: AsyncConnection[Any], record: RebuildRecord) -> dict[str, Any]:
    """A rebuild's progress with its blocked streams: kept beside until the swap, then in its row.

    After the swap, ``unblocked_streams`` names the streams it unblocked.
    """
    if record.state == "swapped":
        report = record.report or {}
        blocked = {k: report[k] for k in ("blocked_streams", "unblocked_streams") if k in report}
        return record.progress() | blocked
    found = await build_blocks(conn, record.beside_schema, record.projection)
    return record.progress() | {"blocked_streams": shown(found)}


async def projection_statuses(
    conn: AsyncConnection[Any], projections: Sequence[Projection]
) -> list[dict[str, Any]]:
    head = await head_position(conn)
    cursor = await conn.execute(_CHECKPOINTS, ([p.NAME for p in projections],))
    found = await cursor.fetchall()
    rows = {name: (int(at), int(version), last, each) for name, at, version, last, each in found}
    latest = await records.latest_of_each(conn)
    statuses = []
    for projection in projections:
        fresh = (0, projection.VERSION, None, [0])
        checkpoint, built_by, last_event_at, partitions = rows.get(projection.NAME, fresh)
        lag = max(0, head - checkpoint)
        running = await is_running(conn, projection.NAME)
        stale = built_by != projection.VERSION and checkpoint > 0
        rebuild = latest.get(projection.NAME)
        statuses.append(
            {
                "name": projection.NAME,
                "version": projection.VERSION,
                "live_tables_version": built_by,
                "tables": list(projection.TABLES),
                "checkpoint": checkpoint,
                "partitions": [int(at) for at in partitions],
                "store_head": head,
                "lag_events": lag,
                "lag_seconds": await _lag_seconds(conn, checkpoint) if lag else 0.0,
                "last_event_at": last_event_at.isoformat() if last_event_at else None,
                "state": "rebuilding" if running else "stale" if stale else "live",
                "stale": stale,
                "rebuild": None if rebuild is None
                else await rebuild_progress(conn, rebuild) | {"running": running},
            }
        )
    return statuses
