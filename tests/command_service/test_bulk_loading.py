"""Loading many streams in one statement gives exactly what loading each alone gives.

The oracle is the library's repository (``get_account``: latest snapshot,
then the tail, two queries per account) and the whole-stream fold of
``get_transfer``. Histories are random, with snapshots at random versions
(several per account, or none), through the real store in PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command_service.bulk_loading import _SNAPSHOTS_AND_TAILS
from command_service.domain.account import Account, apply
from command_service.event_store import AccountSnapshot, LedgerEventStore
from tests.support.ledger_writer import LedgerWriter
from tests.support.transfer_writer import TransferWriter


@pytest.fixture
def writer(database_url: str) -> Iterator[LedgerWriter]:
    writer = LedgerWriter(database_url)
    yield writer
    writer.store.close()


def _one_at_a_time(store: LedgerEventStore, account_id: UUID) -> Account | None:
    try:
        return store.get_account(account_id)
    except AggregateNotFoundError:
        return None


def _snapshot_every_state_chosen(writer: LedgerWriter, account_id: UUID, at: set[int]) -> None:
    """Snapshots of the account at the versions ``at`` (those it has reached)."""
    events = list(writer.store.events.get(account_id))
    state: Account | None = None
    for event in events:
        state = apply(state, event)  # type: ignore[arg-type]
        if state is not None and state.version in at:
            assert writer.store.snapshots is not None
            writer.store.snapshots.put([AccountSnapshot.take(state)])


histories = st.lists(
    st.tuples(
        st.lists(st.integers(min_value=1, max_value=500), max_size=12),  # deposits
        st.sets(st.integers(min_value=1, max_value=13), max_size=4),  # snapshot versions
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories=histories, missing=st.integers(min_value=0, max_value=2))
def test_a_bulk_load_equals_loading_each_account_alone(
    writer: LedgerWriter, histories: list[tuple[list[int], set[int]]], missing: int
) -> None:
    ids: list[UUID] = []
    for deposits, snapshot_versions in histories:
        account_id = writer.open()
        for amount in deposits:
            writer.deposit(account_id, amount)
        _snapshot_every_state_chosen(writer, account_id, snapshot_versions)
        ids.append(account_id)
    ids += [uuid.uuid4() for _ in range(missing)]

    loaded = writer.store.get_accounts([*ids, *ids[:1]])  # a repeated id is loaded once

    assert list(loaded) == ids
    for account_id in ids:
        assert loaded[account_id] == _one_at_a_time(writer.store, account_id)


def test_a_bulk_load_of_transfers_equals_folding_each_alone(writer: LedgerWriter) -> None:
    transfers = TransferWriter(writer)
    source, target = writer.open(), writer.open()
    writer.deposit(source, 1_000)
    ids = [
        transfers.transfer(source, target, 10, outcome)
        for outcome in ("completed", "refunded", "failed", "requested", "debited")
    ]
    unknown = uuid.uuid4()

    loaded = writer.store.get_transfers([*ids, unknown])

    assert loaded[unknown] is None
    for transfer_id in ids:
        alone = writer.store.get_transfer(transfer_id)
        assert alone is not None and loaded[transfer_id] == alone
    assert [loaded[i].status for i in ids if loaded[i]] == [  # type: ignore[union-attr]
        "completed", "refunded", "failed", "requested", "debited",
    ]  # fmt: skip
    assert writer.store.get_accounts([]) == {} and writer.store.get_transfers([]) == {}


def test_the_load_walks_each_streams_key_in_a_store_without_statistics(database_url: str) -> None:
    """The plan a prepared load settles on (the generic one, from the sixth call) reads
    each wanted stream through the primary key, in a large store never analysed yet
    (as every store is until autovacuum comes by): a join over the events table
    there was a scan of all of it for every batch."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state)"
            " SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(i % 2000), 12, '0'))::uuid,"
            " i, 'ledger.Filler.v1', '\\x00' FROM generate_series(1, 200000) AS i"
        )
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute("PREPARE load_one (uuid[]) AS " + _SNAPSHOTS_AND_TAILS.replace("%b", "$1"))
        plan = "\n".join(
            str(row[0]) for row in conn.execute(f"EXPLAIN EXECUTE load_one('{{{uuid.uuid4()}}}')")
        )

    assert "Seq Scan on ledger_events" not in plan, plan
    assert "ledger_events_pkey" in plan, plan
