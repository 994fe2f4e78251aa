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
TransactionKind = Literal["deposit", "withdrawal", "transfer_out", "transfer_in", "refund"]
TransferStatus = Literal["requested", "debited", "completed", "refunded", "failed"]


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


class TransferView(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer as far as its saga has got; ``reason`` says why it was refunded or failed."""

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


class TransferPage(msgspec.Struct, frozen=True, kw_only=True):
    """An account's transfers (either side), newest first; ``next_cursor`` is null at the end."""

    items: list[TransferView]
    next_cursor: str | None


class CurrencyTotal(msgspec.Struct, frozen=True, kw_only=True):
    """All accounts of one currency: the sum of their balances and how many there are."""

    currency: str
    balance: int
    accounts: int
    open_accounts: int
    closed_accounts: int


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """Per currency, in currency order. Balances of different currencies never add up."""

    currencies: list[CurrencyTotal]


class OwnerCurrencyView(msgspec.Struct, frozen=True, kw_only=True):
    """An owner's accounts in one currency and the sum of their balances."""

    currency: str
    balance: int
    accounts: int
    open_accounts: int
    closed_accounts: int


class OwnerView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one owner holds: account counts, and per currency (in currency order) the
    balance. Balances of different currencies never add up, so there is no grand total."""

    owner: str
    accounts: int
    open_accounts: int
    closed_accounts: int
    currencies: list[OwnerCurrencyView]


class OwnerPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of owners in owner order; ``next_cursor`` is null at the end."""

    items: list[OwnerView]
    next_cursor: str | None
