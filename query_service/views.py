"""What the query service answers with: msgspec Structs, one per resource shape.

The field names are the HTTP contract; they are also the read-model column
names, so a row maps onto a view without a hand-written translation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

AccountStatus = Literal["open", "closed"]
TransactionKind = Literal["deposit", "withdrawal"]


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    """An account as the balances projection last saw it."""

    account_id: UUID
    owner: str
    currency: str
    balance: int
    status: AccountStatus
    version: int
    opened_at: datetime
    updated_at: datetime


class TransactionView(msgspec.Struct, frozen=True, kw_only=True):
    """One statement line: a deposit or a withdrawal and the balance after it."""

    position: int
    version: int
    kind: TransactionKind
    amount: int
    currency: str
    balance_after: int
    reference: str | None
    recorded_at: datetime


class AccountPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of accounts; pass ``next_cursor`` back for the next one (null at the end)."""

    items: list[AccountView]
    next_cursor: str | None


class TransactionPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of an account's statement, newest first; ``next_cursor`` is null at the end."""

    items: list[TransactionView]
    next_cursor: str | None
