"""What the event store says about accounts and transfers: read with psycopg, folded here.

The transfer tests check outcomes against the source of truth, not against
any read model (the read side has its own tests): balances, legs and
transfer states are folded from ``ledger_events`` with the published
language and a few lines of code that share nothing with the saga.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from shared_kernel.language.events import (
    LedgerEvent,
    MoneyDeposited,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
    TransferCompleted,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
    TransferSettled,
    decode_event,
)
from shared_kernel.settings import EVENTS_TABLE

TERMINAL = {TransferCompleted: "completed", TransferRefunded: "refunded", TransferFailed: "failed"}
LEGS = (MoneyTransferredOut, MoneyTransferredIn, TransferSettled, MoneyRefunded)
#: The legs each outcome of a transfer leaves on its accounts, each exactly once.
EXPECTED_LEGS = {
    "completed": Counter(MoneyTransferredOut=1, MoneyTransferredIn=1, TransferSettled=1),
    "refunded": Counter(MoneyTransferredOut=1, MoneyRefunded=1),
    "failed": Counter[str](),
}


@dataclass
class LedgerView:
    """Everything the store holds, folded: balances, money in and out, transfers and legs."""

    balances: dict[UUID, int] = field(default_factory=dict)
    deposited: int = 0
    withdrawn: int = 0
    requests: dict[UUID, TransferRequested] = field(default_factory=dict)
    status: dict[UUID, str] = field(default_factory=dict)
    reasons: dict[UUID, str] = field(default_factory=dict)
    #: Per transfer id, how many legs of each kind the accounts recorded.
    legs: dict[UUID, Counter[str]] = field(default_factory=dict)
    events: int = 0

    @property
    def in_flight(self) -> int:
        return sum(
            request.amount
            for transfer_id, request in self.requests.items()
            if self.status[transfer_id] == "debited"
        )

    @property
    def unfinished(self) -> list[UUID]:
        return [t for t, status in self.status.items() if status not in TERMINAL.values()]

    def apply(self, event: LedgerEvent) -> None:
        self.events += 1
        account = event.originator_id
        if isinstance(event, MoneyDeposited):
            self.balances[account] = self.balances.get(account, 0) + event.amount
            self.deposited += event.amount
        elif isinstance(event, MoneyWithdrawn):
            self.balances[account] -= event.amount
            self.withdrawn += event.amount
        elif isinstance(event, MoneyTransferredOut):
            self.balances[account] -= event.amount
        elif isinstance(event, MoneyTransferredIn | MoneyRefunded):
            self.balances[account] = self.balances.get(account, 0) + event.amount
        elif isinstance(event, TransferRequested):
            self.requests[account] = event
            self.status[account] = "requested"
        elif type(event) in TERMINAL:
            self.status[account] = TERMINAL[type(event)]
            reason = getattr(event, "reason", None)
            if reason:
                self.reasons[account] = reason
        elif type(event).__name__ == "TransferDebited":
            self.status[account] = "debited"
        if isinstance(event, LEGS):
            self.legs.setdefault(event.transfer_id, Counter())[type(event).__name__] += 1


def read_ledger(database_url: str) -> LedgerView:
    view = LedgerView()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT topic, state FROM {EVENTS_TABLE} ORDER BY notification_id"
        ).fetchall()
    for topic, state in rows:
        view.apply(decode_event(topic, bytes(state)))
    return view


def stream(database_url: str, stream_id: UUID | str) -> list[LedgerEvent]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT topic, state FROM {EVENTS_TABLE} WHERE originator_id = %s"
            " ORDER BY originator_version",
            (UUID(str(stream_id)),),
        ).fetchall()
    return [decode_event(topic, bytes(state)) for topic, state in rows]


def wait_until_finished(
    database_url: str, transfer_ids: list[UUID] | None = None, timeout: float = 60.0
) -> LedgerView:
    """The ledger once every transfer (or those named) reached an end; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        view = read_ledger(database_url)
        waiting = [
            t
            for t in (transfer_ids if transfer_ids is not None else list(view.status))
            if view.status.get(t) not in TERMINAL.values()
        ]
        if not waiting:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(waiting)} transfer(s) never finished, e.g. {waiting[:3]}")
        time.sleep(0.1)
