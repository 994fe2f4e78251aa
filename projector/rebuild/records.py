"""``projection_rebuilds``: one row per rebuild, so its progress and outcome can be shown.

The row is also how a rebuild killed halfway resumes: ``built_position`` is
written in the same transaction as the rows it built, so it never claims more
than the tables beside hold. Who is running a rebuild is not a column (a
killed process could not clear it) but a session advisory lock per projection
(:mod:`projector.rebuild.lock`), which PostgreSQL drops with the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from projector.rebuild.build_blocks import SwappedBlocks, shown

State = Literal[
    "building", "verifying", "swapped", "refused", "failed", "rolled_back", "abandoned"
]
#: States of a rebuild that has not finished: a new run resumes it (or abandons it).
UNFINISHED: tuple[State, ...] = ("building", "verifying")

_COLUMNS = (
    "id, projection, version, state, built_position, verified_position, events_done,"
    " events_total, retired_version, retired_position, started_at, updated_at, finished_at,"
    " old_dropped_at, error, report"
)


@dataclass(frozen=True)
class RebuildRecord:
    id: int
    projection: str
    version: int
    state: State
    built_position: int
    verified_position: int | None
    events_done: int
    events_total: int
    retired_version: int | None
    retired_position: int | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    old_dropped_at: datetime | None
    error: str | None
    report: dict[str, Any] | None

    @property
    def beside_schema(self) -> str:
        """Where this rebuild builds its tables (and, after a rollback, keeps them)."""
        return f"rebuild_{self.id}"

    @property
    def retired_schema(self) -> str:
        """Where the swap moves the tables it replaced, kept for a rollback."""
        return f"retired_{self.id}"

    def progress(self) -> dict[str, Any]:
        """What the admin routes show of this rebuild."""
        percent = 100.0 * self.events_done / self.events_total if self.events_total else None
        return {
            "rebuild_id": self.id,
            "state": self.state,
            "version": self.version,
            "events_done": self.events_done,
            "events_total": self.events_total,
            "percent": None if percent is None else round(min(percent, 100.0), 1),
            "built_position": self.built_position,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "old_tables_kept": self.old_dropped_at is None and self.state == "swapped",
            "error": self.error,
        }


async def _records(
    conn: AsyncConnection[Any], query: str, params: tuple[Any, ...] = ()
) -> list[RebuildRecord]:
    cursor = conn.cursor(row_factory=class_row(RebuildRecord))
    await cursor.execute(query, params)
    return await cursor.fetchall()


async def _first(
    conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]
) -> RebuildRecord | None:
    records = await _records(conn, query, params)
    return records[0] if records else None


async def _one(conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]) -> RebuildRecord:
    record = await _first(conn, query, params)
    if record is None:
        msg = f"no rebuild row for {params!r}"
        raise LookupError(msg)
    return record


async def by_id(conn: AsyncConnection[Any], rebuild_id: int) -> RebuildRecord:
    query = f"SELECT {_COLUMNS} FROM projection_rebuilds WHERE id = %s"
    return await _one(conn, query, (rebuild_id,))


async def latest(conn: AsyncConnection[Any], projection: str) -> RebuildRecord | None:
    query = (
        f"SELECT {_COLUMNS} FROM projection_rebuilds WHERE projection = %s"
        " ORDER BY id DESC LIMIT 1"
    )
    return await _first(conn, query, (projection,))


async def latest_swapped(conn: AsyncConnection[Any], projection: str) -> RebuildRecord | None:
    """The last swap of ``projection`` whose replaced tables are kept: what a rollback undoes."""
    query = (
        f"SELECT {_COLUMNS} FROM projection_rebuilds WHERE projection = %s"
        " AND state = 'swapped' AND old_dropped_at IS NULL ORDER BY id DESC LIMIT 1"
    )
    return await _first(conn, query, (projection,))


async def latest_of_each(conn: AsyncConnection[Any]) -> dict[str, RebuildRecord]:
    query = (
        f"SELECT DISTINCT ON (projection) {_COLUMNS} FROM projection_rebuilds"
        " ORDER BY projection, id DESC"
    )
    return {record.projection: record for record in await _records(conn, query)}


async def with_old_tables(
    conn: AsyncConnection[Any], projection: str | None, *, finished_before: datetime | None = None
) -> list[RebuildRecord]:
    """Finished rebuilds whose schemas still hold tables (retired, refused or rolled back)."""
    query = (
        f"SELECT {_COLUMNS} FROM projection_rebuilds"
        " WHERE old_dropped_at IS NULL AND state <> ALL(%s)"
        " AND (%s::text IS NULL OR projection = %s)"
        " AND (%s::timestamptz IS NULL OR finished_at < %s)"
        " ORDER BY id"
    )
    params = (list(UNFINISHED), projection, projection, finished_before, finished_before)
    return await _records(conn, query, params)


async def create(
    conn: AsyncConnection[Any], projection: str, version: int, events_total: int
) -> RebuildRecord:
    return await _one(
        conn,
        "INSERT INTO projection_rebuilds (projection, version, state, events_total)"
        f" VALUES (%s, %s, 'building', %s) RETURNING {_COLUMNS}",
        (projection, version, events_total),
    )


async def record_progress(
    conn: AsyncConnection[Any], rebuild_id: int, built_position: int, events_done: int
) -> None:
    """Inside the transaction that wrote the rows: how far the tables beside now reach."""
    await conn.execute(
        "UPDATE projection_rebuilds SET built_position = %s, events_done = %s, updated_at = now()"
        " WHERE id = %s",
        (built_position, events_done, rebuild_id),
    )


async def record_kept_progress(
    conn: AsyncConnection[Any], rebuild_id: int, retired_position: int
) -> None:
    """Inside the transaction that caught them up: how far the kept (retired) tables reach."""
    await conn.execute(
        "UPDATE projection_rebuilds SET retired_position = %s, updated_at = now() WHERE id = %s",
        (retired_position, rebuild_id),
    )


async def add_to_total(conn: AsyncConnection[Any], rebuild_id: int, events: int) -> None:
    await conn.execute(
        "UPDATE projection_rebuilds SET events_total = events_total + %s, updated_at = now()"
        " WHERE id = %s",
        (events, rebuild_id),
    )


async def set_state(
    conn: AsyncConnection[Any],
    rebuild_id: int,
    state: State,
    *,
    error: str | None = None,
    report: dict[str, Any] | None = None,
    verified_position: int | None = None,
    finished: bool = False,
) -> None:
    await conn.execute(
        "UPDATE projection_rebuilds SET state = %s, error = COALESCE(%s, error),"
        " report = COALESCE(%s, report), verified_position = COALESCE(%s, verified_position),"
        " finished_at = CASE WHEN %s THEN now() ELSE finished_at END, updated_at = now()"
        " WHERE id = %s",
        (state, error, Jsonb(report) if report is not None else None, verified_position,
         finished, rebuild_id),
    )  # fmt: skip


async def record_swap(
    conn: AsyncConnection[Any],
    rebuild_id: int,
    *,
    state: State,
    built_position: int | None,
    retired_version: int | None,
    retired_position: int | None,
    blocks: SwappedBlocks | None = None,
) -> None:
    """In the swap's transaction: the outcome, what the retired tables were, and the blocks.

    ``blocks`` go into ``report`` (``blocked_streams``, ``unblocked_streams``):
    once swapped, the build's own blocks table is gone into the live one.
    """
    report = None
    if blocks is not None:
        report = Jsonb({
            "blocked_streams": shown(blocks.blocked),
            "unblocked_streams": [str(stream) for stream in blocks.unblocked],
        })
    await conn.execute(
        "UPDATE projection_rebuilds SET state = %s,"
        " built_position = COALESCE(%s, built_position),"
        " retired_version = COALESCE(%s, retired_version),"
        " retired_position = COALESCE(%s, retired_position),"
        " report = CASE WHEN %s::jsonb IS NULL THEN report"
        "  ELSE COALESCE(report, '{}'::jsonb) || %s::jsonb END,"
        " finished_at = now(), updated_at = now() WHERE id = %s",
        (state, built_position, retired_version, retired_position, report, report, rebuild_id),
    )  # fmt: skip


async def mark_dropped(conn: AsyncConnection[Any], rebuild_id: int) -> None:
    await conn.execute(
        "UPDATE projection_rebuilds SET old_dropped_at = now(), updated_at = now() WHERE id = %s",
        (rebuild_id,),
    )
