"""What a batch learns in its first statement: its checkpoints, locked, the blocks of its
streams and the store's head.

Three questions every batch asks before it applies anything; asked one by one they
were three round trips (and the head a fourth on a pooled connection), which at low
rates, one event per batch, was a third of a batch's statements. The checkpoint rows
are locked by the ``WITH`` query (``FOR UPDATE``), which the statement reads, so
PostgreSQL runs it; the head is read in the same snapshot after the lock is granted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from projector.blocks import BlockKey, blocked_among
from projector.checkpoints import (
    SELECT_CHECKPOINTS,
    Checkpoints,
    checkpoints_of,
    lock_checkpoints,
)
from shared_kernel.event_log import head_position
from shared_kernel.settings import EVENTS_TABLE

_START = (
    f"WITH locked AS ({SELECT_CHECKPOINTS} FOR UPDATE)"
    " SELECT 'checkpoint', projection, position, last_event_at, version, NULL::uuid FROM locked"
    " UNION ALL SELECT 'block', projection, position, NULL, NULL, stream_id"
    " FROM projection_blocks WHERE stream_id = ANY(%(streams)b)"
    f" UNION ALL SELECT 'head', NULL, (SELECT COALESCE(MAX(notification_id), 0)"
    f" FROM {EVENTS_TABLE}), NULL, NULL, NULL"
)


@dataclass(frozen=True, slots=True)
class BatchStart:
    checkpoints: Checkpoints
    blocked: dict[BlockKey, int]
    """Blocked (projection, stream) among the batch's streams, from which position on."""
    store_head: int
    """The store's newest position: an entry beyond it cannot be a stored event."""


async def start_batch(
    conn: AsyncConnection[Any],
    names: Sequence[str],
    versions: Mapping[str, int],
    streams: Sequence[UUID],
    *,
    partition: int,
    partitions: int,
) -> BatchStart:
    """Lock ``partition``'s checkpoint rows of ``names`` and read the rest, in one statement.

    A projection without a row yet, or one at 0 recording another version, takes the
    slower way of :func:`~projector.checkpoints.lock_checkpoints` (rows created or
    adopted first), which happens once, not per batch.
    """
    params = {"names": list(names), "partition": partition, "streams": list(set(streams))}
    cursor = await conn.execute(_START, params)
    checkpoint_rows, blocked, head = [], {}, 0
    for kind, name, position, at, version, stream in await cursor.fetchall():
        if kind == "checkpoint":
            checkpoint_rows.append((name, position, at, version))
        elif kind == "block":
            blocked[(str(name), stream)] = int(position)
        else:
            head = int(position)
    checkpoints = checkpoints_of(checkpoint_rows, names, versions)
    if not checkpoints.complete or checkpoints.adoptable:
        checkpoints = await lock_checkpoints(
            conn, names, versions, partition=partition, partitions=partitions
        )
        blocked = await blocked_among(conn, streams)
        head = await head_position(conn)
    return BatchStart(checkpoints, blocked, head)
