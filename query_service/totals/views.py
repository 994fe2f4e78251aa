"""What the totals read answers with; the field names are the HTTP contract."""

from __future__ import annotations

import msgspec


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
