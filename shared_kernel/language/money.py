"""Money is an integer count of minor units in an ISO 4217 currency.

Floats never appear: every amount is an ``int`` of minor units (cents for EUR),
which keeps sums exact and lets PostgreSQL store balances as ``bigint``.

The codes and their minor units come from the ``iso4217`` data package, which
follows the standard's published list. Codes the standard lists without minor
units (``XXX`` "no currency", ``XTS`` "testing", precious metals, ``XDR``) name no
money an account can hold in integer minor units, so they are refused.
"""

from __future__ import annotations

from iso4217 import Currency

#: Largest amount one deposit or withdrawal may carry (10^15 minor units). It
#: keeps every balance far inside a PostgreSQL ``bigint`` even after many deposits.
MAX_AMOUNT = 10**15

#: Largest balance an account may hold; a deposit past it is refused.
MAX_BALANCE = 2**62

#: Each accepted alphabetic code and its number of minor units (EUR 2, JPY 0, BHD 3).
MINOR_UNITS: dict[str, int] = {
    currency.code: currency.exponent for currency in Currency if currency.exponent is not None
}


def is_currency(code: str) -> bool:
    """True when ``code`` is an ISO 4217 currency with minor units, like ``EUR``."""
    return code in MINOR_UNITS


def minor_units(code: str) -> int:
    """The digits after the decimal point of ``code`` (2 for EUR); KeyError if no currency."""
    return MINOR_UNITS[code]
