"""An append's NOTIFY names the wire names it appended, so a follower wakes only for its own."""

from __future__ import annotations

import uuid

import psycopg

from command_service.domain.account import deposit, open_account
from command_service.relay.leadership import append_channels, appended_any, wire_name_channel
from shared_kernel.language.events import (
    AccountOpened,
    EventMetadata,
    MoneyDeposited,
    TransferDebited,
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


def test_each_append_also_notifies_the_channel_of_each_wire_name_it_appended(
    database_url: str, writer: LedgerWriter
) -> None:
    deposits = wire_name_channel(MoneyDeposited.TOPIC)
    requests = wire_name_channel(TransferRequested.TOPIC)
    assert deposits is not None and requests is not None
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{deposits}"')
        listener.execute(f'LISTEN "{requests}"')
        account_id = writer.open()  # AccountOpened: neither channel
        writer.deposit(account_id, 5)
        writer.deposit(account_id, 6)
        heard = [n.channel for n in listener.notifies(timeout=10, stop_after=2)]

    # Notifications arrive in commit order: had the opening said anything on these
    # channels, it would have come first.
    assert heard == [deposits, deposits]


def test_a_follower_listens_to_the_channels_of_its_wire_names_or_else_to_every_append() -> None:
    transfers = frozenset({TransferRequested.TOPIC, TransferDebited.TOPIC})
    assert append_channels(transfers) == sorted(
        f"{EVENTS_CHANNEL}:{name}" for name in transfers
    )
    assert append_channels(None) == [EVENTS_CHANNEL]
    too_long = "ledger." + "x" * 60 + ".v1"
    assert wire_name_channel(too_long) is None
    # One wire name without a channel of its own: the follower hears every append.
    assert append_channels(transfers | {too_long}) == [EVENTS_CHANNEL]
