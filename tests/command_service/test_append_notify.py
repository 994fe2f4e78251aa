"""An append's NOTIFY names the wire names it appended, so a follower wakes only for its own."""

from __future__ import annotations

import uuid

import psycopg

from command_service.domain.account import deposit, open_account
from command_service.relay.leadership import appended_any
from shared_kernel.language.events import (
    AccountOpened,
    EventMetadata,
    MoneyDeposited,
    TransferRequested,
)
from shared_kernel.settings import EVENTS_CHANNEL
from tests.support.ledger_writer import LedgerWriter


def _metadata() -> EventMetadata:
    cause = str(uuid.uuid4())
    return EventMetadata(correlation_id=cause, causation_id=cause)


def test_each_append_notifies_once_naming_the_distinct_wire_names_it_appended(
    database_url: str, writer: LedgerWriter
) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {EVENTS_CHANNEL}")
        account_id = writer.open()
        writer.deposit(account_id, 5)
        # One append of two events of two types: one NOTIFY naming both, sorted.
        opened = open_account(uuid.uuid4(), "bob", "EUR", _metadata())
        account = writer.accounts[account_id]
        first = deposit(account, 1, None, None, _metadata())
        writer.store.save(opened, first)
        payloads = [n.payload for n in listener.notifies(timeout=10, stop_after=3)]

    assert payloads == [
        AccountOpened.TOPIC,
        MoneyDeposited.TOPIC,
        " ".join(sorted([AccountOpened.TOPIC, MoneyDeposited.TOPIC])),
    ]


def test_a_follower_wakes_for_its_wire_names_and_for_an_append_that_names_none() -> None:
    transfers = frozenset({TransferRequested.TOPIC})
    assert appended_any(TransferRequested.TOPIC, transfers)
    assert appended_any(f"{MoneyDeposited.TOPIC} {TransferRequested.TOPIC}", transfers)
    assert not appended_any(MoneyDeposited.TOPIC, transfers)
    assert not appended_any(f"{AccountOpened.TOPIC} {MoneyDeposited.TOPIC}", transfers)
    assert appended_any("", transfers)  # a NOTIFY from elsewhere, or too many names
