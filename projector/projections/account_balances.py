"""``account_balances``: one row per account with its balance, status and version.

A batch is folded in memory from the current rows of the accounts it
touches, then written back with one upsert (see :mod:`.stream_rows`), whatever
the batch's size. Each event must carry the next version of its
account; a version gap means an earlier event is missing (for instance
dead-lettered), and applying the rest would show a wrong balance as if it
were right, so the event is refused instead.

That is why :data:`HANDLES` lists EVERY event an account stream can carry,
including ``TransferSettled``, which only moves the version: an account event
this projection skipped would make the account's next event look like a gap.
``held`` is what active holds reserve: ``available`` is the balance minus it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection

from projector.projections.base import CannotProject, RecordedEvent
from projector.projections.json_rows import select_rows
from projector.projections.movements import MOVEMENTS, is_movement, signed_amount
from projector.projections.reference_sql import (
    decoded,
    signed_amount_sql,
    topic,
)
from projector.projections.stream_rows import continued, fold_rows
from shared_kernel.language.events import (
    AccountClosed,
    AccountOpened,
    FundsHeld,
    HeldFundsReleased,
    LedgerEvent,
    TransferSettled,
)

NAME = "account_balances"
VERSION = 2
HANDLES: tuple[type[LedgerEvent], ...] = (
    AccountOpened, *MOVEMENTS, AccountClosed, TransferSettled, FundsHeld, HeldFundsReleased,
)  # fmt: skip
_HOLD_SIGN_SQL = (
    f"(CASE topic WHEN {topic(FundsHeld)} THEN 1 WHEN {topic(HeldFundsReleased)} THEN -1"
    " ELSE 0 END)"
)
#: Time travel folds it from one stream of this kind alone (see base.py).
DESCRIBES: str | None = "account"
TABLES: tuple[str, ...] = ("account_balances",)

#: The independent fold a rebuild is verified against: per account stream, the
#: opening's owner and currency, the sum of signed amounts, closed if ever closed,
#: the time and position of its newest event, and the sum of held minus released.
REFERENCE: Mapping[str, str] = {
    "account_balances": (
        f"WITH e AS ({decoded(*HANDLES)}),"
        " folded AS (SELECT stream_id, max(version) AS version, max(position) AS last_position,"
        f" sum({signed_amount_sql()}) AS balance,"
        f" bool_or(topic = {topic(AccountClosed)}) AS closed,"
        f" sum({_HOLD_SIGN_SQL} * COALESCE((d->>'amount')::numeric, 0)) AS held"
        " FROM e GROUP BY stream_id)"
        " SELECT f.stream_id, o.d->>'owner', (o.d->>'currency')::char(3), f.balance::bigint,"
        " CASE WHEN f.closed THEN 'closed' ELSE 'open' END, f.version,"
        " (o.d->>'timestamp')::timestamptz, (l.d->>'timestamp')::timestamptz, f.last_position,"
        " f.held::bigint"
        " FROM folded AS f"
        f" JOIN e AS o ON o.stream_id = f.stream_id AND o.topic = {topic(AccountOpened)}"
        " JOIN e AS l ON l.position = f.last_position"
    )
}

_COLUMNS = (
    "account_id, owner, currency, balance, status, version, opened_at, updated_at,"
    " last_position, held"
)
_SELECT = f"SELECT {_COLUMNS} FROM account_balances WHERE account_id = ANY(%b)"
_UPSERT = (
    f"INSERT INTO account_balances ({_COLUMNS})"
    " " + select_rows(
        ("account_id", "uuid"), ("owner", "text"), ("currency", "text"), ("balance", "bigint"),
        ("status", "text"), ("version", "bigint"), ("opened_at", "timestamptz"),
        ("updated_at", "timestamptz"), ("last_position", "bigint"), ("held", "bigint"),
    ) +
    " ON CONFLICT (account_id) DO UPDATE SET balance = EXCLUDED.balance,"
    " status = EXCLUDED.status, version = EXCLUDED.version,"
    " updated_at = EXCLUDED.updated_at, last_position = EXCLUDED.last_position,"
    " held = EXCLUDED.held"
)


class Balance(msgspec.Struct, frozen=True):
    """One row of ``account_balances``."""

    account_id: UUID
    owner: str
    currency: str
    balance: int
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime
    last_position: int
    held: int = 0


def balance_after(row: Balance | None, recorded: RecordedEvent) -> Balance:
    """The row once ``recorded`` is applied; raises :class:`CannotProject` when it does not fit."""
    event = recorded.event
    if isinstance(event, AccountOpened):
        if row is not None:
            raise CannotProject(f"account {event.originator_id} is already open")
        return Balance(
            account_id=event.originator_id,
            owner=event.owner,
            currency=event.currency,
            balance=0,
            status="open",
            version=event.originator_version,
            opened_at=event.timestamp,
            updated_at=event.timestamp,
            last_position=recorded.position,
            held=0,
        )
    row = continued(row, "account", event)
    balance, status, held = row.balance, row.status, row.held
    if is_movement(event):
        if event.currency != row.currency:
            raise CannotProject(
                f"account {row.account_id} holds {row.currency}, not {event.currency}"
            )
        balance += signed_amount(event)
        if balance < 0:
            raise CannotProject(f"account {row.account_id} would go below zero")
    elif isinstance(event, AccountClosed):
        status = "closed"
    elif isinstance(event, FundsHeld | HeldFundsReleased):
        held += event.amount if isinstance(event, FundsHeld) else -event.amount
    if not 0 <= held <= balance:
        raise CannotProject(f"account {row.account_id} would hold {held} of {balance}")
    return msgspec.structs.replace(
        row,
        balance=balance,
        status=status,
        held=held,
        version=event.originator_version,
        updated_at=event.timestamp,
        last_position=recorded.position,
    )


async def apply(conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
    await fold_rows(
        conn, events, select=_SELECT, upsert=_UPSERT, row_type=Balance, after=balance_after
    )
