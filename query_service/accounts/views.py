"""What the account reads answer with; the field names are the HTTP contract and the columns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

AccountStatus = Literal["open", "closed"]
TransactionKind = Literal["deposit", "withdrawal", "transfer_out", "transfer_in", "refund"]


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    """An account as the balances projection last saw it; ``available`` is the balance
    minus what active holds reserve."""

    account_id: UUID
    owner: str
    currency: str
    balance: int
    available: int
    status: AccountStatus
    version: int
    opened_at: datetime
    updated_at: datetime


class AccountAsOfView(AccountView, frozen=True, kw_only=True):
    """An account as the balances projection showed it when the log stood at ``as_of``."""

    as_of: int


class TransactionView(msgspec.Struct, frozen=True, kw_only=True):
    """One statement line: money in or out, and the balance after it.

    A transfer leg names the other account (``counterparty``) and the
    transfer; both are null for deposits and withdrawals.
    """

    position: int
    version: int
    kind: TransactionKind
    amount: int
    currency: str
    balance_after: int
    reference: str | None
    recorded_at: datetime
    counterparty: UUID | None
    transfer_id: UUID | None


class AccountPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of accounts; pass ``next_cursor`` back for the next one (null at the end)."""

    items: list[AccountView]
    next_cursor: str | None


class TransactionPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of an account's statement, newest first; ``next_cursor`` is null at the end."""

    items: list[TransactionView]
    next_cursor: str | None
