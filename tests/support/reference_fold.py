"""The read models as they must be: an independent fold of the whole event store.

Tests (and the end-to-end suite) assert ``live_read_models(url) ==
expected_read_models(url)``. The expected side reads ``ledger_events`` with
plain psycopg, decodes with the published language only, and folds with its
own few lines here, sharing no code with the projector it checks. Rows are
named tuples so a failing assertion shows which field of which row differs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

import psycopg

from shared_kernel.language.events import (
    AccountClosed,
    AccountOpened,
    FundsHeld,
    HeldFundsReleased,
    HoldCaptured,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    LedgerEvent,
    MoneyDeposited,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
    TransferCompleted,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
    decode_event,
)
from shared_kernel.settings import EVENTS_TABLE

#: Every projection the projector keeps, each with its own checkpoint row.
PROJECTION_NAMES = (
    "account_balances",
    "account_transactions",
    "transfers",
    "currency_totals",
    "owner_summaries",
    "holds",
)


class BalanceRow(NamedTuple):
    owner: str
    currency: str
    balance: int
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime
    last_position: int
    held: int = 0


class TransactionRow(NamedTuple):
    account_id: UUID
    version: int
    kind: str
    amount: int
    currency: str
    balance_after: int
    reference: str | None
    recorded_at: datetime
    counterparty: UUID | None = None
    transfer_id: UUID | None = None


class TransferRow(NamedTuple):
    from_account: UUID
    to_account: UUID
    amount: int
    currency: str
    status: str
    reason: str | None
    requested_at: datetime
    debited_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    version: int
    requested_position: int
    last_position: int


class HoldRow(NamedTuple):
    account_id: UUID
    amount: int
    currency: str
    reference: str | None
    status: str
    captured: int
    expires_at: datetime
    placed_at: datetime
    ended_at: datetime | None
    version: int
    placed_position: int
    last_position: int


class TotalsRow(NamedTuple):
    balance: int
    accounts: int
    open_accounts: int
    closed_accounts: int
    updated_at: datetime
    last_position: int


class OwnerRow(NamedTuple):
    accounts: int
    open_accounts: int
    closed_accounts: int
    balance: int
    updated_at: datetime
    last_position: int


@dataclass
class ReadModels:
    """Every read model, keyed as its table is: balances and transfers by id,
    statement lines by position, totals by currency, owner summaries by (owner, currency)."""

    balances: dict[UUID, BalanceRow] = field(default_factory=dict)
    transactions: dict[int, TransactionRow] = field(default_factory=dict)
    transfers: dict[UUID, TransferRow] = field(default_factory=dict)
    totals: dict[str, TotalsRow] = field(default_factory=dict)
    owners: dict[tuple[str, str], OwnerRow] = field(default_factory=dict)
    holds: dict[UUID, HoldRow] = field(default_factory=dict)


Leg = tuple[str, int, UUID | None, UUID | None, str | None]


def _money_moved(event: LedgerEvent) -> Leg | None:
    """(kind, balance change, counterparty, transfer, reference), or None if no money moved."""
    if isinstance(event, MoneyDeposited):
        return "deposit", event.amount, None, None, event.reference
    if isinstance(event, MoneyWithdrawn):
        return "withdrawal", -event.amount, None, None, event.reference
    if isinstance(event, MoneyTransferredOut):
        return "transfer_out", -event.amount, event.to_account, event.transfer_id, None
    if isinstance(event, MoneyTransferredIn):
        return "transfer_in", event.amount, event.from_account, event.transfer_id, None
    if isinstance(event, MoneyRefunded):
        return "refund", event.amount, event.to_account, event.transfer_id, None
    return None


_FINISHED = {TransferCompleted: "completed", TransferRefunded: "refunded", TransferFailed: "failed"}


def _fold_account(expected: ReadModels, position: int, event: LedgerEvent) -> None:
    account_id = event.originator_id
    if isinstance(event, AccountOpened):
        expected.balances[account_id] = BalanceRow(
            event.owner, event.currency, 0, "open", event.originator_version,
            event.timestamp, event.timestamp, position,
        )  # fmt: skip
        _count(expected, event.currency, position, event.timestamp, accounts=1, open_accounts=1,
               owner=event.owner)  # fmt: skip
        return
    row = expected.balances[account_id]
    row = row._replace(
        version=event.originator_version, updated_at=event.timestamp, last_position=position
    )
    leg = _money_moved(event)
    if leg is not None:
        kind, change, counterparty, transfer_id, reference = leg
        row = row._replace(balance=row.balance + change)
        expected.transactions[position] = TransactionRow(
            account_id, event.originator_version, kind, abs(change), row.currency, row.balance,
            reference, event.timestamp, counterparty, transfer_id,
        )  # fmt: skip
        _count(expected, row.currency, position, event.timestamp, balance=change, owner=row.owner)
    elif isinstance(event, FundsHeld):
        row = row._replace(held=row.held + event.amount)
    elif isinstance(event, HeldFundsReleased):
        row = row._replace(held=row.held - event.amount)
    elif isinstance(event, AccountClosed):
        row = row._replace(status="closed")
        _count(expected, row.currency, position, event.timestamp, open_accounts=-1,
               closed_accounts=1, owner=row.owner)  # fmt: skip
    expected.balances[account_id] = row


def _count(
    expected: ReadModels,
    currency: str,
    position: int,
    at: datetime,
    *,
    balance: int = 0,
    accounts: int = 0,
    open_accounts: int = 0,
    closed_accounts: int = 0,
    owner: str | None = None,
) -> None:
    row = expected.totals.get(currency, TotalsRow(0, 0, 0, 0, at, position))
    expected.totals[currency] = TotalsRow(
        row.balance + balance, row.accounts + accounts, row.open_accounts + open_accounts,
        row.closed_accounts + closed_accounts, at, position,
    )  # fmt: skip
    if owner is not None:
        mine = expected.owners.get((owner, currency), OwnerRow(0, 0, 0, 0, at, position))
        expected.owners[(owner, currency)] = OwnerRow(
            mine.accounts + accounts, mine.open_accounts + open_accounts,
            mine.closed_accounts + closed_accounts, mine.balance + balance, at, position,
        )  # fmt: skip


def _fold_transfer(expected: ReadModels, position: int, event: LedgerEvent) -> None:
    transfer_id = event.originator_id
    if isinstance(event, TransferRequested):
        expected.transfers[transfer_id] = TransferRow(
            event.from_account, event.to_account, event.amount, event.currency, "requested",
            None, event.timestamp, None, None, event.timestamp, event.originator_version,
            position, position,
        )  # fmt: skip
        return
    row = expected.transfers[transfer_id]._replace(
        version=event.originator_version, updated_at=event.timestamp, last_position=position
    )
    if isinstance(event, TransferDebited):
        row = row._replace(status="debited", debited_at=event.timestamp)
    else:
        row = row._replace(status=_FINISHED[type(event)], finished_at=event.timestamp)
        if isinstance(event, TransferRefunded | TransferFailed):
            row = row._replace(reason=event.reason)
    expected.transfers[transfer_id] = row


_HOLD_ENDS = {HoldCaptured: "captured", HoldReleased: "released", HoldExpired: "expired"}


def _fold_hold(expected: ReadModels, position: int, event: LedgerEvent) -> None:
    hold_id = event.originator_id
    if isinstance(event, HoldPlaced):
        expected.holds[hold_id] = HoldRow(
            event.account_id, event.amount, event.currency, event.reference, "placed", 0,
            event.expires_at, event.timestamp, None, event.originator_version, position, position,
        )  # fmt: skip
        return
    expected.holds[hold_id] = expected.holds[hold_id]._replace(
        status=_HOLD_ENDS[type(event)],
        captured=event.amount if isinstance(event, HoldCaptured) else 0,
        ended_at=event.timestamp,
        version=event.originator_version,
        last_position=position,
    )


_TRANSFER_EVENTS = (
    TransferRequested, TransferDebited, TransferCompleted, TransferRefunded, TransferFailed,
)  # fmt: skip


def stored_events(database_url: str) -> list[tuple[int, LedgerEvent]]:
    """Every event of the store with its position, in position order."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT notification_id, topic, state FROM {EVENTS_TABLE} ORDER BY notification_id"
        ).fetchall()
    return [(position, decode_event(topic, bytes(state))) for position, topic, state in rows]


def expected_read_models(database_url: str) -> ReadModels:
    """Fold every event of the store, in position order, into the expected rows."""
    expected = ReadModels()
    for position, event in stored_events(database_url):
        if isinstance(event, _TRANSFER_EVENTS):
            _fold_transfer(expected, position, event)
        elif isinstance(event, HoldPlaced | HoldCaptured | HoldReleased | HoldExpired):
            _fold_hold(expected, position, event)
        else:
            _fold_account(expected, position, event)
    return expected


def live_read_models(database_url: str) -> ReadModels:
    """What the projector wrote, in the same shape."""
    live = ReadModels()
    with psycopg.connect(database_url) as conn:
        for account_id, *values in conn.execute(
            "SELECT account_id, owner, currency, balance, status, version, opened_at,"
            " updated_at, last_position, held FROM account_balances"
        ):
            live.balances[account_id] = BalanceRow(*values)
        for position, *values in conn.execute(
            "SELECT position, account_id, version, kind, amount, currency, balance_after,"
            " reference, recorded_at, counterparty, transfer_id FROM account_transactions"
        ):
            live.transactions[position] = TransactionRow(*values)
        for transfer_id, *values in conn.execute(
            "SELECT transfer_id, from_account, to_account, amount, currency, status, reason,"
            " requested_at, debited_at, finished_at, updated_at, version, requested_position,"
            " last_position FROM transfers"
        ):
            live.transfers[transfer_id] = TransferRow(*values)
        for hold_id, *values in conn.execute(
            "SELECT hold_id, account_id, amount, currency, reference, status, captured,"
            " expires_at, placed_at, ended_at, version, placed_position, last_position FROM holds"
        ):
            live.holds[hold_id] = HoldRow(*values)
        for currency, balance, *values in conn.execute(
            "SELECT currency, balance, accounts, open_accounts, closed_accounts, updated_at,"
            " last_position FROM currency_totals"
        ):
            assert isinstance(balance, Decimal) and balance == int(balance)
            live.totals[currency] = TotalsRow(int(balance), *values)
        for owner, currency, accounts, open_accounts, closed_accounts, balance, *values in (
            conn.execute(
                "SELECT owner, currency, accounts, open_accounts, closed_accounts, balance,"
                " updated_at, last_position FROM owner_summaries"
            )
        ):
            assert isinstance(balance, Decimal) and balance == int(balance)
            live.owners[(owner, currency)] = OwnerRow(
                accounts, open_accounts, closed_accounts, int(balance), *values
            )
    return live


def store_head(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        query = f"SELECT COALESCE(MAX(notification_id), 0) FROM {EVENTS_TABLE}"
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def checkpoints(database_url: str) -> dict[str, int]:
    """The checkpoint of every projection that has one (the lowest of its partitions')."""
    with psycopg.connect(database_url) as conn:
        return dict(
            conn.execute(
                "SELECT projection, min(position) FROM projection_checkpoints GROUP BY projection"
            )
        )


def wait_until_projected(
    database_url: str, position: int | None = None, timeout: float = 60.0
) -> dict[str, int]:
    """Wait until every projection reached ``position`` (default: the store's head).

    Returns the checkpoints; raises TimeoutError with them when the time is up.
    This bounds a test's wait, it does not measure speed.
    """
    target = store_head(database_url) if position is None else position
    deadline = time.monotonic() + timeout
    while True:
        reached = checkpoints(database_url)
        if reached and min(reached.values()) >= target:
            return reached
        if time.monotonic() > deadline:
            raise TimeoutError(f"projection not at {target} after {timeout}s: {reached}")
        time.sleep(0.05)
