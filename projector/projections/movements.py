"""The account events that move money, read the same way by every projection.

Balances, statement lines and currency totals each need "how much, which
way, with whom, for which transfer" of the same five events; saying it once
keeps them from disagreeing about a sign.
"""

from __future__ import annotations

from typing import Literal, TypeGuard
from uuid import UUID

from shared_kernel.language.events import (
    LedgerEvent,
    MoneyDeposited,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
)

Movement = (
    MoneyDeposited | MoneyWithdrawn | MoneyTransferredOut | MoneyTransferredIn | MoneyRefunded
)
StatementKind = Literal["deposit", "withdrawal", "transfer_out", "transfer_in", "refund"]

MOVEMENTS: tuple[type[LedgerEvent], ...] = (
    MoneyDeposited,
    MoneyWithdrawn,
    MoneyTransferredOut,
    MoneyTransferredIn,
    MoneyRefunded,
)

_KINDS: dict[type[LedgerEvent], tuple[StatementKind, int]] = {
    MoneyDeposited: ("deposit", 1),
    MoneyWithdrawn: ("withdrawal", -1),
    MoneyTransferredOut: ("transfer_out", -1),
    MoneyTransferredIn: ("transfer_in", 1),
    MoneyRefunded: ("refund", 1),
}


def is_movement(event: LedgerEvent) -> TypeGuard[Movement]:
    return type(event) in _KINDS


def signed_amount(event: Movement) -> int:
    """The change to the account's balance: positive in, negative out."""
    return _KINDS[type(event)][1] * event.amount


def statement_kind(event: Movement) -> StatementKind:
    return _KINDS[type(event)][0]


def counterparty(event: Movement) -> UUID | None:
    """The other account of a transfer leg; None for a deposit or withdrawal."""
    if isinstance(event, MoneyTransferredOut | MoneyRefunded):
        return event.to_account
    if isinstance(event, MoneyTransferredIn):
        return event.from_account
    return None


def transfer_of(event: Movement) -> UUID | None:
    """The transfer a leg belongs to; None for a deposit or withdrawal."""
    if isinstance(event, MoneyDeposited | MoneyWithdrawn):
        return None
    return event.transfer_id
