"""The saga's steps against real PostgreSQL: batched, repeated, raced.

Two steppers advancing the same transfers at once (what two saga processes,
or a saga and its restarted self, would do) must still record every leg
exactly once: the loser of each race is refused by the transfer stream's
version key and finds the step done.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from command_service.domain.account import Account, apply, deposit, open_account
from command_service.domain.transfer import request_transfer
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.transfer_saga.steps import TransferSteps
from shared_kernel.language.events import EventMetadata
from tests.support.tcp_proxy import CommitReplyDroppingProxy
from tests.transfers.ledger_view import read_ledger

META = EventMetadata(correlation_id="steps", causation_id="steps")


def funded(store: LedgerEventStore, amount: int, currency: str = "EUR") -> Account:
    opened = open_account(uuid4(), "steps", currency, META)
    account = apply(None, opened)
    if not amount:
        store.save(opened)
        return account
    event = deposit(account, amount, None, None, META)
    store.save(opened, event)
    return apply(account, event)


def requests(
    store: LedgerEventStore, accounts: list[Account], count: int, amount: int
) -> list[UUID]:
    ids = []
    for index in range(count):
        source, target = accounts[index % len(accounts)], accounts[(index + 1) % len(accounts)]
        event = request_transfer(
            uuid4(), source, to_account=target.id, target=target, amount=amount, metadata=META
        )
        store.save(event)
        ids.append(event.originator_id)
    return ids


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_one_batch_moves_many_transfers_in_two_saves(
    store: LedgerEventStore, database_url: str
) -> None:
    accounts = [funded(store, 100) for _ in range(4)]
    ids = requests(store, accounts, 40, 10)  # each account pays 10 transfers of 10: all of it

    states = TransferSteps(store).advance(ids)

    assert Counter(t.status for t in states) == {"completed": 40}
    view = read_ledger(database_url)
    assert all(view.balances[a.id] == 100 for a in accounts)
    assert {t: legs for t, legs in view.legs.items()} == {
        t: Counter(MoneyTransferredOut=1, MoneyTransferredIn=1, TransferSettled=1) for t in ids
    }
    assert all(store.get_account(a.id).pending_transfers == frozenset() for a in accounts)


def test_in_one_batch_later_transfers_see_the_earlier_debits(store: LedgerEventStore) -> None:
    source, target = funded(store, 25), funded(store, 0)
    ids = requests(store, [source, target], 1, 10) + requests(store, [source, target], 1, 10)
    ids += requests(store, [source, target], 1, 10)

    states = {t.id: t for t in TransferSteps(store).advance(ids)}

    assert [(states[i].status, states[i].reason) for i in ids] == [
        ("completed", None),
        ("completed", None),
        ("failed", "insufficient-funds"),
    ]
    assert store.get_account(source.id).balance == 5


def test_two_steppers_racing_record_each_leg_once(
    store: LedgerEventStore, database_url: str
) -> None:
    accounts = [funded(store, 10_000) for _ in range(5)]
    ids = requests(store, accounts, 150, 7)
    done_before = counter("ledger_saga_steps_already_done_total") + counter(
        "ledger_saga_step_conflicts_total"
    )
    other = LedgerEventStore(env=event_store_env(database_url, pool_size=4))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def step(steps: TransferSteps, order: list[UUID]) -> None:
        try:
            start.wait()
            for index in range(0, len(order), 10):
                steps.advance(order[index : index + 10])
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=step, args=(TransferSteps(store), ids)),
        threading.Thread(target=step, args=(TransferSteps(other), ids[::-1])),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        other.close()

    assert not errors, errors
    view = read_ledger(database_url)
    assert Counter(view.status.values()) == {"completed": 150}
    assert all(
        legs == Counter(MoneyTransferredOut=1, MoneyTransferredIn=1, TransferSettled=1)
        for legs in view.legs.values()
    )
    assert sum(view.balances.values()) == 5 * 10_000
    assert all(store.get_account(a.id).pending_transfers == frozenset() for a in accounts)
    collisions = counter("ledger_saga_steps_already_done_total") + counter(
        "ledger_saga_step_conflicts_total"
    )
    assert collisions > done_before  # the race did happen, and was refused by the store


def test_a_transfer_advanced_elsewhere_is_left_alone(
    store: LedgerEventStore, database_url: str
) -> None:
    source, target = funded(store, 50), funded(store, 0)
    [first] = requests(store, [source, target], 1, 5)
    [second] = requests(store, [source, target], 1, 5)
    TransferSteps(store).advance([first])

    states = {t.id: t for t in TransferSteps(store).advance([first, second, uuid4()])}

    assert (states[first].status, states[second].status) == ("completed", "completed")
    assert len(states) == 2  # an id that names no transfer is ignored
    view = read_ledger(database_url)
    assert view.legs[first] == view.legs[second]
    assert view.balances[target.id] == 10


@pytest.fixture
def proxy(database_url: str) -> Iterator[CommitReplyDroppingProxy]:
    proxy = CommitReplyDroppingProxy(urlsplit(database_url).port or 5432).start()
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("transfers", [1, 30])
def test_a_pass_takes_its_transfers_to_the_end_in_four_statements(
    store: LedgerEventStore, database_url: str, proxy: CommitReplyDroppingProxy, transfers: int
) -> None:
    """Read the transfers, load their accounts, append the debits, append the credits: the
    credit step decides on what the debit step loaded and saved. Counted by the proxy in
    front of PostgreSQL, whatever the pass holds."""
    accounts = [funded(store, 1_000) for _ in range(4)]
    through_proxy = LedgerEventStore(
        env=event_store_env(proxy.url(urlsplit(database_url).path.lstrip("/")), pool_size=1)
    )
    try:
        steps = TransferSteps(through_proxy)
        steps.advance(requests(store, accounts, 1, 1))  # the pool's connection is open
        ids = requests(store, accounts, transfers, 10)
        proxy.clear_round_trips()

        states = steps.advance(ids)

        assert Counter(t.status for t in states) == {"completed": transfers}
        # A pool's check of a stirred idle connection (an empty query) is not the pass's work.
        trips = [trip[0][:40] for trip in proxy.round_trips() if any(map(str.strip, trip))]
        assert len(trips) == 4, trips
    finally:
        through_proxy.close()
