"""Money is an integer count of minor units in an ISO 4217 currency.

Floats never appear: every amount is an ``int`` of minor units (cents for EUR),
which keeps sums exact and lets PostgreSQL store balances as ``bigint``.
"""

from __future__ import annotations

import pycountry

#: Largest amount one deposit or withdrawal may carry (10^15 minor units). It
#: keeps every balance far inside a PostgreSQL ``bigint`` even after many deposits.
MAX_AMOUNT = 10**15

#: Largest balance an account may hold; a deposit past it is refused.
MAX_BALANCE = 2**62


def _active_currency_codes() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


CURRENCY_CODES: frozenset[str] = _active_currency_codes()


def is_currency(code: str) -> bool:
    """True when ``code`` is an ISO 4217 alphabetic code, like ``EUR``."""
    return code in CURRENCY_CODES
