"""ISO 4217 from a maintained table: real currencies with their minor units, nothing else."""

from __future__ import annotations

from uuid import uuid4

import pytest

from command_service.domain.account import InvalidCurrency, open_account
from shared_kernel.language.events import EventMetadata
from shared_kernel.language.money import MINOR_UNITS, is_currency, minor_units


@pytest.mark.parametrize(("code", "digits"), [("EUR", 2), ("JPY", 0), ("BHD", 3), ("CLF", 4)])
def test_currencies_know_their_minor_units(code: str, digits: int) -> None:
    assert is_currency(code)
    assert minor_units(code) == digits


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XDR", "EURO", "eur", "ABC", ""])
def test_codes_without_minor_units_or_outside_the_standard_are_refused(code: str) -> None:
    assert not is_currency(code)
    with pytest.raises(KeyError):
        minor_units(code)


def test_the_table_is_the_whole_standard() -> None:
    assert len(MINOR_UNITS) > 150
    assert all(len(code) == 3 and code.isupper() for code in MINOR_UNITS)


def test_an_account_in_a_non_currency_is_refused() -> None:
    meta = EventMetadata(correlation_id="test", causation_id="test")
    with pytest.raises(InvalidCurrency):
        open_account(uuid4(), "alice", "XXX", meta)
    assert open_account(uuid4(), "alice", "JPY", meta).currency == "JPY"
