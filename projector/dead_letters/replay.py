"""Re-applying the held events of blocked streams once their cause is fixed.

For each block (:mod:`projector.blocks`) the stream's events are read back
from the event store, from the refused one up to the projection's
checkpoint, and applied in order by the projection's own ``apply``, in ONE
transaction that first locks every checkpoint row: the lock each projector
batch (and a rebuild's swap) takes first, so no batch interleaves and the
replay is safe while the projector runs. Events past the checkpoint are the
projector's: the moment the block row goes (same commit) it applies them as
usual. A stream whose replay fails again is left exactly as it was (a
savepoint per stream), its block row noting the failure; the others commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from projector.batch import recorded_event
from projector.blocks import Block, read_blocks, replay_failed, unblock
from projector.checkpoints import lock_checkpoints, read_checkpoints
from projector.isolation import describe
from projector.projections import Projection, RecordedEvent
from shared_kernel.event_log import LogEntry
from shared_kernel.outages import OUTAGES
from shared_kernel.partitions import partition_of
from shared_kernel.settings import EVENTS_TABLE, PROJECTION_CHANNEL

_STREAM_EVENTS = (
    "SELECT notification_id, originator_id, originator_version, topic, state"
    f" FROM {EVENTS_TABLE} WHERE originator_id = %s"
    " AND notification_id >= %s AND notification_id <= %s ORDER BY notification_id"
)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    block: Block
    applied: int
    error: str | None = None
    failed_position: int | None = None

    @property
    def unblocked(self) -> bool:
        return self.error is None


class StillFailing(Exception):
    def __init__(self, position: int, error: str) -> None:
        super().__init__(f"position {position}: {error}")
        self.position = position
        self.error = error


async def replay_blocked(
    conn: AsyncConnection[Any],
    projections: Sequence[Projection],
    *,
    position: int | None = None,
    partitions: int = 1,
) -> list[ReplayResult]:
    """Replay every block (those first refused at ``position`` only, if given).

    A blocked stream's held events are those its partition's checkpoint has
    passed, so each stream is replayed up to that checkpoint (the rows of every
    partition are locked first, so no projector moves them meanwhile).
    """
    by_name = {projection.NAME: projection for projection in projections}
    versions = {projection.NAME: projection.VERSION for projection in projections}
    results: list[ReplayResult] = []
    async with conn.transaction():
        checkpoints = await lock_checkpoints(conn, list(by_name), versions)
        for block in await read_blocks(conn, position=position, lock=True):
            projection = by_name.get(block.projection)
            if projection is None or block.projection in checkpoints.stale:
                why = "not a registered projection" if projection is None else "stale: rebuild it"
                results.append(ReplayResult(block, 0, why))
                continue
            partition = partition_of(block.stream_id, partitions)
            reached = await read_checkpoints(conn, [projection.NAME], partition=partition)
            up_to = reached.positions[projection.NAME]
            try:
                async with conn.transaction():
                    applied = await _replay_stream(conn, projection, block, up_to)
                    await unblock(conn, block)
            except StillFailing as failure:
                await replay_failed(conn, block, str(failure))
                results.append(ReplayResult(block, 0, failure.error, failure.position))
            else:
                results.append(ReplayResult(block, applied))
        # The query service re-reads checkpoints and blocks when told.
        await conn.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, str(checkpoints.floor)))
    return results


async def _replay_stream(
    conn: AsyncConnection[Any], projection: Projection, block: Block, up_to: int
) -> int:
    """Apply the stream's held events in order; :class:`StillFailing` at the first refusal."""
    cursor = await conn.execute(_STREAM_EVENTS, (block.stream_id, block.position, up_to))
    applied = 0
    for position, stream_id, version, topic, state in await cursor.fetchall():
        entry = LogEntry(position, 0, stream_id, version, topic, bytes(state))
        try:
            recorded: RecordedEvent = recorded_event(entry)
            if not isinstance(recorded.event, projection.HANDLES):
                continue
            await projection.apply(conn, [recorded])
        except OUTAGES:
            raise
        except Exception as error:
            raise StillFailing(position, describe(error)) from error
        applied += 1
    return applied
