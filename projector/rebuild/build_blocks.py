"""The streams a rebuild blocks: kept beside its tables, swapped in with them.

A rebuild applies the store through the projector's own stream isolation
(:mod:`projector.isolation`), so an event the projection refuses blocks its
stream in the build exactly as in the live projector: later events of that
stream are held. The build's blocks live in a ``projection_blocks`` table of
its own schema (``rebuild_<id>``), which the isolation code writes because
that schema comes first on the batch's ``search_path``; they are written in
the batch's transaction with the rows and the progress, so a resumed build
has them as they were.

At the swap the build's blocks replace the projection's live ones in the
swap's transaction: a stream the code applies now (a fixed release) is
unblocked, one it still refuses stays blocked. The replaced blocks are kept
beside the replaced tables, so a rollback brings both back together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection, sql

from projector.blocks import COLUMNS, Block, read_blocks
from projector.rebuild.tables import live_schema, tables_in

TABLE = "projection_blocks"
#: Blocks shown per rebuild by ``--status`` and the admin routes.
SHOWN = 20

_KEEP = (
    # A block the live table already had (same stream, same first refused event)
    # keeps its history: when it was first seen and the last replay's error.
    "INSERT INTO {live} (" + COLUMNS + ")"
    " SELECT c.projection, c.stream_id, c.position, c.event_type, c.reason,"
    " COALESCE(p.blocked_at, c.blocked_at), c.held, c.last_held_position,"
    " p.replay_failed_at, p.replay_error"
    " FROM {candidate} AS c LEFT JOIN {parked} AS p ON p.projection = c.projection"
    " AND p.stream_id = c.stream_id AND p.position = c.position WHERE c.projection = %s"
)


@dataclass(frozen=True)
class SwappedBlocks:
    """The projection's blocked streams after a swap, and those the swap unblocked."""

    blocked: tuple[Block, ...] = ()
    unblocked: tuple[UUID, ...] = ()


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, TABLE)


async def has_blocks_table(conn: AsyncConnection[Any], schema: str) -> bool:
    return bool(await tables_in(conn, schema, [TABLE]))


async def ensure_blocks_table(conn: AsyncConnection[Any], schema: str) -> bool:
    """Give ``schema`` an empty ``projection_blocks`` shaped like the live one; True if created.

    Call it with the connection's usual ``search_path`` (the live table is found by name).
    """
    if await has_blocks_table(conn, schema):
        return False
    source = _table(await live_schema(conn, TABLE))
    await conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(_table(schema), source)
    )
    return True


async def copy_live_blocks(conn: AsyncConnection[Any], schema: str, projection: str) -> None:
    """Copy the projection's live blocks into ``schema``'s table."""
    live = _table(await live_schema(conn, TABLE))
    await conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE projection = %s").format(
            _table(schema), live
        ),
        (projection,),
    )


async def build_blocks(
    conn: AsyncConnection[Any], schema: str, projection: str | None = None
) -> list[Block]:
    """The blocks kept in ``schema`` (of ``projection`` only, if given; none without a table)."""
    if not await has_blocks_table(conn, schema):
        return []
    try:
        async with conn.transaction():  # a savepoint, if the caller is in a transaction
            found = await read_blocks(conn, schema=schema)
    except psycopg.errors.UndefinedTable:
        # Only a status read races a rebuild this way: its swap moved the schema away
        # between the look and the read, so the build has no blocks of its own now.
        return []
    return [block for block in found if projection in (None, block.projection)]


async def swap_blocks(
    conn: AsyncConnection[Any], projection: str, candidate_schema: str, park_schema: str
) -> SwappedBlocks:
    """In the swap's transaction: park the live blocks, put the candidate's in their place.

    A candidate without a blocks table (tables kept before rebuilds knew of
    blocks) leaves the live blocks as they are.
    """
    live_at = await live_schema(conn, TABLE)
    live, parked, candidate = _table(live_at), _table(park_schema), _table(candidate_schema)
    park = sql.Identifier(park_schema)
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(park))
    await ensure_blocks_table(conn, park_schema)
    await conn.execute(sql.SQL("DELETE FROM {} WHERE projection = %s").format(parked), [projection])
    await copy_live_blocks(conn, park_schema, projection)
    before = {block.stream_id for block in await build_blocks(conn, park_schema, projection)}
    if not await has_blocks_table(conn, candidate_schema):
        return SwappedBlocks(tuple(await build_blocks(conn, live_at, projection)))
    await conn.execute(sql.SQL("DELETE FROM {} WHERE projection = %s").format(live), (projection,))
    await conn.execute(
        sql.SQL(_KEEP).format(live=live, candidate=candidate, parked=parked), (projection,)
    )
    await conn.execute(sql.SQL("DROP TABLE {}").format(candidate))
    after = await build_blocks(conn, live_at, projection)
    unblocked = before - {block.stream_id for block in after}
    return SwappedBlocks(tuple(after), tuple(sorted(unblocked)))


def shown(blocks: Sequence[Block]) -> dict[str, Any]:
    """What status pages show of a build's blocks: how many, and the first few."""
    return {
        "count": len(blocks),
        "streams": [
            {"stream_id": str(b.stream_id), "position": b.position, "event_type": b.event_type,
             "reason": b.reason, "held": b.held}
            for b in blocks[:SHOWN]
        ],
    }  # fmt: skip
