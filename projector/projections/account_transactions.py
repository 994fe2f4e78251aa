"""``account_transactions``: one statement line per movement of money on an account.

Deposits and withdrawals, and the legs of transfers (``transfer_out``,
``transfer_in``, ``refund``), which also name the other account
(``counterparty``) and the transfer. Each line carries ``balance_after``,
computed from the account's previous line, so this read model stands on its
own and never reads another projection's table: every event that changes a
balance makes a line, so the previous line always holds the balance before.
The position is the primary key: the same event can never make two lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from projector.projections.base import CannotProject, RecordedEvent
from projector.projections.json_rows import rows_param, select_rows
from projector.projections.movements import (
    MOVEMENTS,
    counterparty,
    is_movement,
    signed_amount,
    statement_kind,
    transfer_of,
)
from projector.projections.queued_writes import write_rows
from projector.projections.reference_sql import decoded, signed_amount_sql, topic
from shared_kernel.language.events import (
    LedgerEvent,
    MoneyDeposited,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
)

NAME = "account_transactions"
VERSION = 1
HANDLES: tuple[type[LedgerEvent], ...] = MOVEMENTS
#: Time travel folds it from one stream of this kind alone (see base.py).
DESCRIBES: str | None = "account"
TABLES: tuple[str, ...] = ("account_transactions",)

_KIND_SQL = (
    f"CASE topic WHEN {topic(MoneyDeposited)} THEN 'deposit'"
    f" WHEN {topic(MoneyWithdrawn)} THEN 'withdrawal'"
    f" WHEN {topic(MoneyTransferredOut)} THEN 'transfer_out'"
    f" WHEN {topic(MoneyTransferredIn)} THEN 'transfer_in' ELSE 'refund' END"
)
#: The independent fold a rebuild is verified against: one line per movement,
#: its balance after as the running sum of the account's signed amounts.
REFERENCE: Mapping[str, str] = {
    "account_transactions": (
        f"WITH m AS ({decoded(*HANDLES)})"
        f" SELECT position, stream_id, version, {_KIND_SQL}, (d->>'amount')::bigint,"
        " (d->>'currency')::char(3),"
        f" (sum({signed_amount_sql()}) OVER (PARTITION BY stream_id ORDER BY version))::bigint,"
        " d->>'reference', (d->>'timestamp')::timestamptz,"
        f" CASE WHEN topic = {topic(MoneyTransferredIn)} THEN (d->>'from_account')::uuid"
        "  ELSE (d->>'to_account')::uuid END,"
        " (d->>'transfer_id')::uuid"
        " FROM m"
    )
}

#: Each account's newest line: one backward step of the (account_id, version) key
#: per account, so a batch costs the same however long the accounts' histories are
#: (a DISTINCT ON over ``account_id = ANY(...)`` reads and sorts every line of each).
LAST_BALANCES = (
    "SELECT a.account_id, l.balance_after FROM unnest(%b::uuid[]) AS a (account_id)"
    " CROSS JOIN LATERAL (SELECT balance_after FROM account_transactions AS t"
    " WHERE t.account_id = a.account_id ORDER BY t.version DESC LIMIT 1) AS l"
)
_INSERT = (
    "INSERT INTO account_transactions (position, account_id, version, kind, amount, currency,"
    " balance_after, reference, recorded_at, counterparty, transfer_id)"
    " " + select_rows(
        ("position", "bigint"), ("account_id", "uuid"), ("version", "bigint"), ("kind", "text"),
        ("amount", "bigint"), ("currency", "text"), ("balance_after", "bigint"),
        ("reference", "text"), ("recorded_at", "timestamptz"), ("counterparty", "uuid"),
        ("transfer_id", "uuid"),
    ) +
    " ON CONFLICT (position) DO NOTHING"
)


async def apply(conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
    account_ids = list({r.event.originator_id for r in events if is_movement(r.event)})
    if not account_ids:
        return
    cursor = await conn.execute(LAST_BALANCES, (account_ids,))
    balances: dict[UUID, int] = {row[0]: row[1] for row in await cursor.fetchall()}
    lines: list[tuple[Any, ...]] = []
    for recorded in events:
        event = recorded.event
        if not is_movement(event):
            continue
        account_id = event.originator_id
        balance = balances.get(account_id, 0) + signed_amount(event)
        if balance < 0:
            raise CannotProject(f"account {account_id} would go below zero")
        balances[account_id] = balance
        reference = event.reference if isinstance(event, MoneyDeposited | MoneyWithdrawn) else None
        lines.append(
            (
                recorded.position,
                account_id,
                event.originator_version,
                statement_kind(event),
                event.amount,
                event.currency,
                balance,
                reference,
                event.timestamp,
                counterparty(event),
                transfer_of(event),
            )
        )
    if not lines:
        return
    await write_rows(conn, _INSERT, rows_param(lines))
