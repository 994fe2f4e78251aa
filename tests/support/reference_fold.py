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
from typing import NamedTuple
from uuid import UUID

import psycopg

from shared_kernel.events import (
    AccountClosed,
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    decode_event,
)
from shared_kernel.settings import EVENTS_TABLE


class BalanceRow(NamedTuple):
    owner: str
    currency: str
    balance: int
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime
    last_position: int


class TransactionRow(NamedTuple):
    account_id: UUID
    version: int
    kind: str
    amount: int
    currency: str
    balance_after: int
    reference: str | None
    recorded_at: datetime


@dataclass
class ReadModels:
    """``account_balances`` by account id and ``account_transactions`` by position."""

    balances: dict[UUID, BalanceRow] = field(default_factory=dict)
    transactions: dict[int, TransactionRow] = field(default_factory=dict)


def expected_read_models(database_url: str) -> ReadModels:
    """Fold every event of the store, in position order, into the expected rows."""
    expected = ReadModels()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT notification_id, topic, state FROM {EVENTS_TABLE} ORDER BY notification_id"
        ).fetchall()
    for position, topic, state in rows:
        event = decode_event(topic, bytes(state))
        account_id = event.originator_id
        if isinstance(event, AccountOpened):
            expected.balances[account_id] = BalanceRow(
                event.owner, event.currency, 0, "open", event.originator_version,
                event.timestamp, event.timestamp, position,
            )  # fmt: skip
            continue
        row = expected.balances[account_id]
        row = row._replace(
            version=event.originator_version, updated_at=event.timestamp, last_position=position
        )
        if isinstance(event, MoneyDeposited | MoneyWithdrawn):
            deposit = isinstance(event, MoneyDeposited)
            row = row._replace(balance=row.balance + (event.amount if deposit else -event.amount))
            expected.transactions[position] = TransactionRow(
                account_id, event.originator_version, "deposit" if deposit else "withdrawal",
                event.amount, event.currency, row.balance, event.reference, event.timestamp,
            )  # fmt: skip
        elif isinstance(event, AccountClosed):
            row = row._replace(status="closed")
        expected.balances[account_id] = row
    return expected


def live_read_models(database_url: str) -> ReadModels:
    """What the projector wrote, in the same shape."""
    live = ReadModels()
    with psycopg.connect(database_url) as conn:
        for account_id, *values in conn.execute(
            "SELECT account_id, owner, currency, balance, status, version, opened_at,"
            " updated_at, last_position FROM account_balances"
        ):
            live.balances[account_id] = BalanceRow(*values)
        for position, *values in conn.execute(
            "SELECT position, account_id, version, kind, amount, currency, balance_after,"
            " reference, recorded_at FROM account_transactions"
        ):
            live.transactions[position] = TransactionRow(*values)
    return live


def store_head(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        query = f"SELECT COALESCE(MAX(notification_id), 0) FROM {EVENTS_TABLE}"
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def checkpoints(database_url: str) -> dict[str, int]:
    """The checkpoint of every projection that has one."""
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT projection, position FROM projection_checkpoints"))


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
