"""The swap: the rebuilt tables replace the live ones in ONE transaction.

It first locks every checkpoint row, as every projector batch does at its
start, so no batch interleaves: batches in flight finish first, later ones
wait. Inside it applies the last events to the new tables up to where the
live projections are, moves the live tables to a schema where they are kept
and the new ones to the live schema, and records the projection's new
checkpoint and version. Queries keep naming the same tables; from the commit
on those names are the new tables. ``lock_timeout`` bounds how long queries
can queue behind the swap; on a timeout the whole swap rolls back and the
caller tries again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from projector.checkpoints import lock_checkpoints
from projector.projections import Projection
from projector.rebuild.build_blocks import SwappedBlocks, swap_blocks
from projector.rebuild.history import SaveProgress, replay_into
from projector.rebuild.tables import live_schema, move_tables
from shared_kernel.settings import PROJECTION_CHANNEL


@dataclass(frozen=True)
class SwapOutcome:
    position: int
    """The projection's checkpoint once the new tables are live."""
    retired_position: int
    """The checkpoint the replaced tables had reached."""
    retired_version: int
    """The projection version that built the replaced tables."""
    blocks: SwappedBlocks = field(default_factory=SwappedBlocks)
    """The projection's blocked streams from the swap on, and those it unblocked."""


#: Runs inside the swap's transaction, to record its outcome with it.
AfterSwap = Callable[[AsyncConnection[Any], SwapOutcome], Awaitable[None]]


async def swap_in(
    conn: AsyncConnection[Any],
    projection: Projection,
    *,
    candidate_schema: str,
    candidate_position: int,
    park_schema: str,
    version: int,
    all_versions: Mapping[str, int],
    batch_size: int,
    lock_timeout_seconds: float,
    save: SaveProgress,
    after_swap: AfterSwap,
    catch_up: bool = True,
) -> SwapOutcome:
    """Make ``candidate_schema``'s tables the live ones; the live ones go to ``park_schema``.

    With ``catch_up`` the candidate first gets the events up to the live
    checkpoints (the leading one, when this projection is stale), so no query
    ever sees the projection go back. Without it (tables of another version,
    which this code cannot extend) the checkpoint becomes ``candidate_position``.
    """
    async with conn.transaction():
        timeout_ms = max(1, int(lock_timeout_seconds * 1000))
        await conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{timeout_ms}ms",))
        cursor = await conn.execute("SELECT current_setting('search_path')")
        row = await cursor.fetchone()
        path = str(row[0]) if row else "public"
        checkpoints = await lock_checkpoints(conn, list(all_versions), all_versions)
        live_at = checkpoints.positions[projection.NAME]
        cursor = await conn.execute(
            "SELECT version FROM projection_checkpoints WHERE projection = %s", (projection.NAME,)
        )
        row = await cursor.fetchone()
        live_version = int(row[0]) if row else version
        position = candidate_position
        if catch_up:
            target = max([live_at, *checkpoints.live.values()])
            if target > position:
                replayed = await replay_into(
                    conn, projection, candidate_schema, after=position, up_to=target,
                    batch_size=batch_size, events_done=0, save=save,
                )  # fmt: skip
                position = replayed.position
            await conn.execute("SELECT set_config('search_path', %s, true)", (path,))
        schema = await live_schema(conn, projection.TABLES[0])
        blocks = await swap_blocks(conn, projection.NAME, candidate_schema, park_schema)
        await move_tables(conn, projection.TABLES, schema, park_schema)
        await move_tables(conn, projection.TABLES, candidate_schema, schema)
        await conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(candidate_schema)))
        await conn.execute(
            "UPDATE projection_checkpoints SET position = %s, version = %s, updated_at = now()"
            " WHERE projection = %s",
            (position, version, projection.NAME),
        )
        await conn.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, str(position)))
        outcome = SwapOutcome(position, live_at, live_version, blocks)
        await after_swap(conn, outcome)
    return outcome
