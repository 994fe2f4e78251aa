"""What the owner reads answer with; the field names are the HTTP contract."""

from __future__ import annotations

import msgspec

from query_service.totals.views import CurrencySums


class OwnerCurrencyView(CurrencySums, frozen=True, kw_only=True):
    """An owner's accounts in one currency and the sum of their balances."""


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
