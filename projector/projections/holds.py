"""``holds``: one row per hold, its status folded from the hold stream.

The stream of a hold reads ``HoldPlaced``, then one of ``HoldCaptured``,
``HoldReleased`` or ``HoldExpired``. Like the transfers, a batch is folded in
memory from the current rows and written back with one ``unnest`` upsert; an
event that does not follow its hold's version, or that ends a hold that has
ended, is refused (and dead-lettered) rather than shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from projector.projections.base import CannotProject, RecordedEvent
from projector.projections.json_rows import select_rows
from projector.projections.reference_sql import decoded, topic
from projector.projections.stream_rows import continued, fold_rows
from shared_kernel.language.events import (
    HoldCaptured,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    LedgerEvent,
)

NAME = "holds"
HANDLES: tuple[type[LedgerEvent], ...] = (HoldPlaced, HoldCaptured, HoldReleased, HoldExpired)
VERSION = 1
#: Time travel folds it from one stream of this kind alone (see base.py).
DESCRIBES: str | None = "hold"
TABLES: tuple[str, ...] = ("holds",)

HoldStatus = Literal["placed", "captured", "released", "expired"]
_ENDS: dict[type[LedgerEvent], HoldStatus] = {
    HoldCaptured: "captured",
    HoldReleased: "released",
    HoldExpired: "expired",
}

_STATUS_SQL = (
    f"CASE l.topic WHEN {topic(HoldPlaced)} THEN 'placed'"
    f" WHEN {topic(HoldCaptured)} THEN 'captured'"
    f" WHEN {topic(HoldReleased)} THEN 'released' ELSE 'expired' END"
)
#: The independent fold a rebuild is verified against: per hold stream, the
#: placement's terms, the status its newest event names, what a capture took.
REFERENCE: Mapping[str, str] = {
    "holds": (
        f"WITH h AS ({decoded(*HANDLES)}),"
        " folded AS (SELECT stream_id, max(version) AS version, max(position) AS last_position"
        " FROM h GROUP BY stream_id)"
        " SELECT f.stream_id, (p.d->>'account_id')::uuid, (p.d->>'amount')::bigint,"
        f" (p.d->>'currency')::char(3), p.d->>'reference', {_STATUS_SQL},"
        f" CASE WHEN l.topic = {topic(HoldCaptured)} THEN (l.d->>'amount')::bigint ELSE 0 END,"
        " (p.d->>'expires_at')::timestamptz, (p.d->>'timestamp')::timestamptz,"
        f" CASE WHEN l.topic <> {topic(HoldPlaced)} THEN (l.d->>'timestamp')::timestamptz END,"
        " f.version, p.position, f.last_position"
        " FROM folded AS f"
        f" JOIN h AS p ON p.stream_id = f.stream_id AND p.topic = {topic(HoldPlaced)}"
        " JOIN h AS l ON l.position = f.last_position"
    )
}

_COLUMNS = (
    "hold_id, account_id, amount, currency, reference, status, captured, expires_at,"
    " placed_at, ended_at, version, placed_position, last_position"
)
_SELECT = f"SELECT {_COLUMNS} FROM holds WHERE hold_id = ANY(%b)"
_UPSERT = (
    f"INSERT INTO holds ({_COLUMNS})"
    " " + select_rows(
        ("hold_id", "uuid"), ("account_id", "uuid"), ("amount", "bigint"), ("currency", "text"),
        ("reference", "text"), ("status", "text"), ("captured", "bigint"),
        ("expires_at", "timestamptz"), ("placed_at", "timestamptz"), ("ended_at", "timestamptz"),
        ("version", "bigint"), ("placed_position", "bigint"), ("last_position", "bigint"),
    ) +
    " ON CONFLICT (hold_id) DO UPDATE SET status = EXCLUDED.status,"
    " captured = EXCLUDED.captured, ended_at = EXCLUDED.ended_at,"
    " version = EXCLUDED.version, last_position = EXCLUDED.last_position"
)


class HoldState(msgspec.Struct, frozen=True):
    """What a row of ``holds`` says of its hold: the query service serves these fields as is."""

    hold_id: UUID
    account_id: UUID
    amount: int
    currency: str
    reference: str | None
    status: HoldStatus
    captured: int
    expires_at: datetime
    placed_at: datetime
    ended_at: datetime | None
    version: int


class Hold(HoldState, frozen=True):
    """One row of ``holds``: the hold, and where its stream stands in the log."""

    placed_position: int
    last_position: int


def hold_after(row: Hold | None, recorded: RecordedEvent) -> Hold:
    """The row once ``recorded`` is applied; raises :class:`CannotProject` when it does not fit."""
    event = recorded.event
    if isinstance(event, HoldPlaced):
        if row is not None:
            raise CannotProject(f"hold {event.originator_id} was already placed")
        return Hold(
            hold_id=event.originator_id,
            account_id=event.account_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
            status="placed",
            captured=0,
            expires_at=event.expires_at,
            placed_at=event.timestamp,
            ended_at=None,
            version=event.originator_version,
            placed_position=recorded.position,
            last_position=recorded.position,
        )
    row = continued(row, "hold", event)
    if row.status != "placed":
        raise CannotProject(f"hold {row.hold_id} is {row.status}; it ends once")
    return msgspec.structs.replace(
        row,
        status=_ENDS[type(event)],
        captured=event.amount if isinstance(event, HoldCaptured) else 0,
        ended_at=event.timestamp,
        version=event.originator_version,
        last_position=recorded.position,
    )


async def apply(conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
    await fold_rows(
        conn, events, select=_SELECT, upsert=_UPSERT, row_type=Hold, after=hold_after
    )
