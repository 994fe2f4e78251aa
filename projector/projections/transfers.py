"""``transfers``: one row per transfer, its status folded from the transfer stream.

The stream of a transfer reads ``TransferRequested``, then either
``TransferFailed`` (the source could not be debited), or ``TransferDebited``
followed by ``TransferCompleted`` or ``TransferRefunded``. Like the balances,
a batch is folded in memory from the current rows and written back with one
``unnest`` upsert. An event that does not follow its transfer's version, or
that the published language does not allow in the current status, is refused
(and dead-lettered) rather than shown: a transfer that looks completed without
having been debited would be a lie about money.
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
from projector.projections.reference_sql import decoded, topic, topics
from projector.projections.stream_rows import continued, fold_rows
from shared_kernel.language.events import (
    LedgerEvent,
    TransferCompleted,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
)

NAME = "transfers"
HANDLES: tuple[type[LedgerEvent], ...] = (
    TransferRequested,
    TransferDebited,
    TransferCompleted,
    TransferRefunded,
    TransferFailed,
)
VERSION = 1
#: Time travel folds it from one stream of this kind alone (see base.py).
DESCRIBES: str | None = "transfer"
TABLES: tuple[str, ...] = ("transfers",)

_STATUS_SQL = (
    f"CASE l.topic WHEN {topic(TransferRequested)} THEN 'requested'"
    f" WHEN {topic(TransferDebited)} THEN 'debited'"
    f" WHEN {topic(TransferCompleted)} THEN 'completed'"
    f" WHEN {topic(TransferRefunded)} THEN 'refunded' ELSE 'failed' END"
)
#: The independent fold a rebuild is verified against: per transfer stream, the
#: request's terms, the status named by its newest event, and when each step was.
REFERENCE: Mapping[str, str] = {
    "transfers": (
        f"WITH t AS ({decoded(*HANDLES)}),"
        " folded AS (SELECT stream_id, max(version) AS version, max(position) AS last_position,"
        f" max(position) FILTER (WHERE topic = {topic(TransferDebited)}) AS debited,"
        " max(position) FILTER (WHERE topic IN"
        f" ({topics(TransferCompleted, TransferRefunded, TransferFailed)})) AS finished"
        " FROM t GROUP BY stream_id)"
        " SELECT f.stream_id, (r.d->>'from_account')::uuid, (r.d->>'to_account')::uuid,"
        f" (r.d->>'amount')::bigint, (r.d->>'currency')::char(3), {_STATUS_SQL},"
        " l.d->>'reason', (r.d->>'timestamp')::timestamptz, (db.d->>'timestamp')::timestamptz,"
        " (fin.d->>'timestamp')::timestamptz, (l.d->>'timestamp')::timestamptz, f.version,"
        " r.position, f.last_position"
        " FROM folded AS f"
        f" JOIN t AS r ON r.stream_id = f.stream_id AND r.topic = {topic(TransferRequested)}"
        " JOIN t AS l ON l.position = f.last_position"
        " LEFT JOIN t AS db ON db.position = f.debited"
        " LEFT JOIN t AS fin ON fin.position = f.finished"
    )
}

TransferStatus = Literal["requested", "debited", "completed", "refunded", "failed"]

#: Which status each event needs before it, and the status it leaves.
_TRANSITIONS: dict[type[LedgerEvent], tuple[TransferStatus, TransferStatus]] = {
    TransferDebited: ("requested", "debited"),
    TransferFailed: ("requested", "failed"),
    TransferCompleted: ("debited", "completed"),
    TransferRefunded: ("debited", "refunded"),
}

_COLUMNS = (
    "transfer_id, from_account, to_account, amount, currency, status, reason, requested_at,"
    " debited_at, finished_at, version, updated_at, requested_position, last_position"
)
_SELECT = f"SELECT {_COLUMNS} FROM transfers WHERE transfer_id = ANY(%b)"
_UPSERT = (
    f"INSERT INTO transfers ({_COLUMNS})"
    " " + select_rows(
        ("transfer_id", "uuid"), ("from_account", "uuid"), ("to_account", "uuid"),
        ("amount", "bigint"), ("currency", "text"), ("status", "text"), ("reason", "text"),
        ("requested_at", "timestamptz"), ("debited_at", "timestamptz"),
        ("finished_at", "timestamptz"), ("version", "bigint"), ("updated_at", "timestamptz"),
        ("requested_position", "bigint"), ("last_position", "bigint"),
    ) +
    " ON CONFLICT (transfer_id) DO UPDATE SET status = EXCLUDED.status,"
    " reason = EXCLUDED.reason, debited_at = EXCLUDED.debited_at,"
    " finished_at = EXCLUDED.finished_at, updated_at = EXCLUDED.updated_at,"
    " version = EXCLUDED.version, last_position = EXCLUDED.last_position"
)


class TransferState(msgspec.Struct, frozen=True):
    """What a row of ``transfers`` says of its transfer: the query service serves these fields
    as is."""

    transfer_id: UUID
    from_account: UUID
    to_account: UUID
    amount: int
    currency: str
    status: TransferStatus
    reason: str | None
    requested_at: datetime
    debited_at: datetime | None
    finished_at: datetime | None
    version: int


class Transfer(TransferState, frozen=True):
    """One row of ``transfers``: the transfer, and when and where its stream last moved."""

    updated_at: datetime
    requested_position: int
    last_position: int


def transfer_after(row: Transfer | None, recorded: RecordedEvent) -> Transfer:
    """The row once ``recorded`` is applied; raises :class:`CannotProject` when it does not fit."""
    event = recorded.event
    if isinstance(event, TransferRequested):
        if row is not None:
            raise CannotProject(f"transfer {event.originator_id} was already requested")
        return Transfer(
            transfer_id=event.originator_id,
            from_account=event.from_account,
            to_account=event.to_account,
            amount=event.amount,
            currency=event.currency,
            status="requested",
            reason=None,
            requested_at=event.timestamp,
            debited_at=None,
            finished_at=None,
            updated_at=event.timestamp,
            version=event.originator_version,
            requested_position=recorded.position,
            last_position=recorded.position,
        )
    row = continued(row, "transfer", event)
    before, after = _TRANSITIONS[type(event)]
    if row.status != before:
        raise CannotProject(
            f"transfer {row.transfer_id} is {row.status}; {type(event).__name__} needs {before}"
        )
    changes: dict[str, Any] = {
        "status": after,
        "version": event.originator_version,
        "updated_at": event.timestamp,
        "last_position": recorded.position,
    }
    if isinstance(event, TransferDebited):
        changes["debited_at"] = event.timestamp
    else:
        changes["finished_at"] = event.timestamp
    if isinstance(event, TransferRefunded | TransferFailed):
        changes["reason"] = event.reason
    return msgspec.structs.replace(row, **changes)


async def apply(conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
    await fold_rows(
        conn, events, select=_SELECT, upsert=_UPSERT, row_type=Transfer, after=transfer_after
    )
