"""The tables a swap replaced: rolling back to them, and dropping them.

A swap keeps the replaced tables in ``retired_<id>``. **Rollback** undoes the
last swap whose replaced tables are kept (again, the one before it): it swaps them
back the same way a rebuild swaps in: when the code's version built them, they
are first caught up from the store (outside the lock, then the last events
inside the swap) so the projection never goes back; the rebuilt tables are
then kept in ``rebuild_<id>``. The blocked streams the replaced tables had
come back with them (the swap kept them beside). Tables of another version cannot be extended by
this code: they come back at the position they had, under their version, so
the projector leaves them alone as stale until rebuilt (see
:mod:`projector.checkpoints`).

**Drop** removes the schemas of finished rebuilds (by the operator, or once
the retention has passed), after which that rebuild cannot be rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import LockNotAvailable

from projector.projections import PROJECTIONS, Projection, projection_named
from projector.rebuild import records
from projector.rebuild.build_blocks import copy_live_blocks, ensure_blocks_table
from projector.rebuild.history import replay_into
from projector.rebuild.lock import try_lock, unlock
from projector.rebuild.rebuilder import (
    RebuildOptions,
    RebuildRunning,
    SwapNotPossible,
    connect,
)
from projector.rebuild.records import RebuildRecord
from projector.rebuild.swap import SwapOutcome, swap_in
from projector.rebuild.tables import drop_schema, tables_in
from shared_kernel.event_log import head_position

log = logging.getLogger(__name__)


class NothingToRollBack(LookupError):
    """No swapped rebuild of this projection still has its replaced tables."""


async def _kept(conn: AsyncConnection[Any], projection: Projection) -> RebuildRecord:
    record = await records.latest_swapped(conn, projection.NAME)
    if record is None:
        msg = f"no rebuild of {projection.NAME} whose replaced tables are kept"
        raise NothingToRollBack(msg)
    present = await tables_in(conn, record.retired_schema, projection.TABLES)
    if len(present) != len(projection.TABLES):
        msg = f"the replaced tables of rebuild {record.id} are gone from {record.retired_schema}"
        raise NothingToRollBack(msg)
    return record


async def rollback(
    database_url: str,
    projection: Projection,
    options: RebuildOptions | None = None,
    registry: Sequence[Projection] = PROJECTIONS,
) -> RebuildRecord:
    """Put back the tables the last swap of ``projection`` replaced; returns the updated row."""
    options = options or RebuildOptions()
    versions = {p.NAME: p.VERSION for p in registry}
    conn = await connect(database_url)
    try:
        if not await try_lock(conn, projection.NAME):
            raise RebuildRunning(projection.NAME)
        record = await _kept(conn, projection)
        if await ensure_blocks_table(conn, record.retired_schema):
            # Kept before swaps kept blocks: the live ones are the best guess of theirs.
            await copy_live_blocks(conn, record.retired_schema, projection.NAME)
        same_version = record.retired_version == projection.VERSION
        position = record.retired_position or 0
        done = 0

        async def save(batch_conn: AsyncConnection[Any], at: int, _events: int) -> None:
            await records.record_kept_progress(batch_conn, record.id, at)

        async def after_swap(swap_conn: AsyncConnection[Any], outcome: SwapOutcome) -> None:
            await records.record_swap(
                swap_conn, record.id, state="rolled_back", built_position=None,
                retired_version=None, retired_position=outcome.position,
            )  # fmt: skip

        for _ in range(options.swap_attempts):
            if same_version:
                head = await head_position(conn)
                while head - position > options.swap_within:
                    replayed = await replay_into(
                        conn, projection, record.retired_schema, after=position, up_to=head,
                        batch_size=options.batch_size, events_done=done, save=save,
                    )  # fmt: skip
                    position, done = replayed.position, replayed.events_done
                    head = await head_position(conn)
            try:
                outcome = await swap_in(
                    conn, projection, candidate_schema=record.retired_schema,
                    candidate_position=position, park_schema=record.beside_schema,
                    version=projection.VERSION if same_version else record.retired_version or 1,
                    all_versions=versions, batch_size=options.batch_size,
                    lock_timeout_seconds=options.lock_timeout_seconds, save=save,
                    after_swap=after_swap, catch_up=same_version,
                )  # fmt: skip
            except LockNotAvailable:
                continue
            log.info(
                "rolled back to the tables the rebuild replaced",
                extra={"projection": projection.NAME, "rebuild_id": record.id,
                       "checkpoint": outcome.position, "rebuilt_kept_in": record.beside_schema},
            )  # fmt: skip
            return await records.by_id(conn, record.id)
        msg = f"the rollback could not take its locks in {options.swap_attempts} attempts"
        raise SwapNotPossible(msg)
    finally:
        await unlock(conn, projection.NAME)
        await conn.close()


async def drop_old(
    database_url: str, projection: str | None = None, *, finished_before: datetime | None = None
) -> list[str]:
    """Drop the kept tables of finished rebuilds (of ``projection``, or of all); the schemas gone.

    A projection being rebuilt right now is skipped (or, when named, refused).
    """
    if projection is not None:
        projection_named(projection)
    dropped: list[str] = []
    conn = await connect(database_url)
    try:
        for record in await records.with_old_tables(
            conn, projection, finished_before=finished_before
        ):
            if not await try_lock(conn, record.projection):
                if projection is not None:
                    raise RebuildRunning(projection)
                continue
            try:
                for schema in (record.retired_schema, record.beside_schema):
                    if await drop_schema(conn, schema):
                        dropped.append(schema)
                await records.mark_dropped(conn, record.id)
            finally:
                await unlock(conn, record.projection)
        if dropped:
            log.info("dropped the tables of finished rebuilds", extra={"schemas": dropped})
        return dropped
    finally:
        await conn.close()
