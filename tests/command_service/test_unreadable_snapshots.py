"""A snapshot is a cache of a fold: one this code cannot read is passed over, never fatal.

A snapshot written by another version of the account's state (a topic this
code does not know, or bytes that no longer decode) makes the load fold the
account from its events; a known older version (v1, before pending transfers)
is read as the current one. The oracle is the fold of every event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast
from uuid import UUID

import msgspec
import psycopg
import pytest

from command_service.domain.account import Account, fold
from command_service.event_store import AccountSnapshot
from shared_kernel.language.events import LedgerEvent
from shared_kernel.settings import SNAPSHOTS_TABLE
from tests.support.ledger_writer import LedgerWriter


@pytest.fixture
def writer(database_url: str) -> Iterator[LedgerWriter]:
    writer = LedgerWriter(database_url)
    yield writer
    writer.store.close()


def _history(writer: LedgerWriter) -> tuple[UUID, Account]:
    account_id = writer.open()
    for amount in (100, 250, 75):
        writer.deposit(account_id, amount)
    events = cast(list[LedgerEvent], list(writer.store.events.get(account_id)))
    folded = fold(None, events)
    assert folded is not None
    return account_id, folded


def _store_snapshot(database_url: str, account_id: UUID, version: int, topic: str,
                    state: bytes) -> None:  # fmt: skip
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"INSERT INTO {SNAPSHOTS_TABLE} (originator_id, originator_version, topic, state)"
            " VALUES (%s, %s, %s, %s)",
            (account_id, version, topic, state),
        )


@pytest.mark.parametrize(
    ("topic", "state"),
    [
        ("ledger.AccountSnapshot.v9", b'{"from": "a later version"}'),
        (AccountSnapshot.TOPIC, b'{"originator_id": "not even a uuid"}'),
    ],
    ids=["unknown version", "does not decode"],
)
def test_an_unreadable_snapshot_is_passed_over_and_the_events_folded(
    writer: LedgerWriter, database_url: str, topic: str, state: bytes
) -> None:
    account_id, expected = _history(writer)
    _store_snapshot(database_url, account_id, 3, topic, state)

    assert writer.store.get_account(account_id) == expected
    assert writer.store.get_accounts([account_id]) == {account_id: expected}


def test_a_v1_snapshot_is_read_as_the_current_version(
    writer: LedgerWriter, database_url: str
) -> None:
    account_id, expected = _history(writer)
    at_v3 = fold(None, cast(list[LedgerEvent], list(writer.store.events.get(account_id, lte=3))))
    assert at_v3 is not None
    v1_state = AccountSnapshot.take(at_v3)
    encoded = msgspec.json.encode(v1_state).replace(b',"pending_transfers":[]', b"")
    assert b"pending_transfers" not in encoded
    _store_snapshot(database_url, account_id, 3, "ledger.AccountSnapshot.v1", encoded)

    assert writer.store.get_account(account_id) == expected
    assert writer.store.get_accounts([account_id]) == {account_id: expected}
