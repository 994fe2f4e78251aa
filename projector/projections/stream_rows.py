"""Projections with one row per stream (an account, a transfer, a hold), folded in memory.

A batch reads the current rows of the streams it touches, folds each event
into its stream's row, and writes the changed rows back with one upsert: one
round trip for the read whatever the batch's size, the upsert going with the
batch's checkpoint advance (:mod:`.queued_writes`). Every event after a stream's
first must carry the next version of the row: a gap means an earlier event is
missing (for instance dead-lettered), and folding the rest would show a wrong
row as if it were right, so the event is refused instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from projector.projections.base import CannotProject, RecordedEvent
from projector.projections.json_rows import struct_rows_param
from projector.projections.queued_writes import write_rows
from shared_kernel.language.events import LedgerEvent


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


Row = TypeVar("Row", bound=msgspec.Struct)
Versioned = TypeVar("Versioned", bound=_Versioned)


def continued(row: Versioned | None, kind: str, event: LedgerEvent) -> Versioned:
    """The row ``event`` continues; raises :class:`CannotProject` if there is none or the
    event does not carry its next version."""
    if row is None:
        raise CannotProject(f"{type(event).__name__} for unknown {kind} {event.originator_id}")
    if event.originator_version != row.version + 1:
        raise CannotProject(
            f"{kind} {event.originator_id} is at version {row.version};"
            f" version {event.originator_version} does not follow it"
        )
    return row


async def fold_rows(
    conn: AsyncConnection[Any],
    events: Sequence[RecordedEvent],
    *,
    select: str,
    upsert: str,
    row_type: type[Row],
    after: Callable[[Row | None, RecordedEvent], Row],
) -> None:
    """Fold ``events`` into the rows ``select`` reads (by stream id) and ``upsert`` the changed.

    ``select`` takes the array of stream ids and returns the row's fields in
    order; ``after`` is the row once one event is applied.
    """
    stream_ids = list({recorded.event.originator_id for recorded in events})
    cursor = await conn.execute(select, (stream_ids,))
    rows: dict[UUID, Row] = {row[0]: row_type(*row) for row in await cursor.fetchall()}
    changed: dict[UUID, Row] = {}
    for recorded in events:
        stream_id = recorded.event.originator_id
        changed[stream_id] = rows[stream_id] = after(rows.get(stream_id), recorded)
    await write_rows(conn, upsert, struct_rows_param(changed.values()))
