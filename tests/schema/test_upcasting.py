"""Retired wire names: what they read as, and which names SQL must ask for."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from shared_kernel.language.events import AccountOpened, LedgerEvent, MoneyDeposited
from shared_kernel.language.upcasting import RETIRED, reads_as, retire, wire_names


def test_a_retired_deposit_reads_as_the_current_version() -> None:
    assert reads_as("ledger.MoneyDeposited.v1") == MoneyDeposited.TOPIC
    assert reads_as(MoneyDeposited.TOPIC) == MoneyDeposited.TOPIC


def test_sql_asks_for_every_wire_name_an_event_type_was_stored_under() -> None:
    assert wire_names(MoneyDeposited) == ("ledger.MoneyDeposited.v2", "ledger.MoneyDeposited.v1")
    assert wire_names(AccountOpened) == ("ledger.AccountOpened.v1",)


class Unannotated(LedgerEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "test.Unannotated.v1"


def test_an_upcaster_must_say_what_it_returns() -> None:
    def upcast(old):  # type: ignore[no-untyped-def]
        return old

    def vague(old: Unannotated) -> Any:
        return old

    for upcaster in (upcast, vague):
        with pytest.raises(TypeError, match="must declare the event type it returns"):
            retire(Unannotated, upcaster)
    assert "test.Unannotated.v1" not in RETIRED
