"""What the totals read answers with; the field names are the HTTP contract."""

from __future__ import annotations

from decimal import Decimal
from typing import Self

import msgspec


class CurrencySums(msgspec.Struct, frozen=True, kw_only=True):
    """What the sums over many accounts say of one currency (``currency_totals`` and
    ``owner_summaries`` hold the same columns)."""

    currency: str
    balance: int
    accounts: int
    open_accounts: int
    closed_accounts: int

    @classmethod
    def of_row(
        cls,
        currency: str,
        balance: Decimal,
        accounts: int,
        open_accounts: int,
        closed_accounts: int,
    ) -> Self:
        return cls(
            currency=currency,
            balance=int(balance),  # numeric: the sum may outgrow a bigint
            accounts=accounts,
            open_accounts=open_accounts,
            closed_accounts=closed_accounts,
        )


class CurrencyTotal(CurrencySums, frozen=True, kw_only=True):
    """All accounts of one currency: the sum of their balances and how many there are."""


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """Per currency, in currency order. Balances of different currencies never add up."""

    currencies: list[CurrencyTotal]
