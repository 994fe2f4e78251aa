"""Snapshots change how fast an account loads, never what it loads.

Histories of deposits and withdrawals go through the real appender (which
writes a snapshot whenever a batch carries an account across a multiple of
the interval) into real PostgreSQL. Loading from the latest snapshot plus the
tail must equal folding every event with no snapshot, at the head and at
earlier versions.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from command_service.bus.bus import CommandBus
from command_service.commands import Command, DepositMoney, OpenAccount, WithdrawMoney
from command_service.domain.account import Account, fold
from command_service.event_store import AccountSnapshot, LedgerEventStore
from shared_kernel.language.events import LedgerEvent

moves = st.lists(
    st.tuples(st.sampled_from(["deposit", "withdraw"]), st.integers(min_value=1, max_value=100)),
    min_size=1,
    max_size=40,
)


async def record(appender: CommandBus, commands: list[Command[Any]], chunk: int) -> None:
    """Submit in groups, so batches of different sizes cross snapshot boundaries."""
    appender.start()
    for start in range(0, len(commands), chunk):
        group = commands[start : start + chunk]
        await asyncio.gather(*(appender.dispatch(c) for c in group), return_exceptions=True)


def full_fold(store: LedgerEventStore, account: Account, version: int | None = None) -> Account:
    events = cast(list[LedgerEvent], list(store.events.get(account.id, lte=version)))
    folded = fold(None, events)
    assert folded is not None
    return folded


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=moves,
    interval=st.integers(min_value=2, max_value=7),
    chunk=st.integers(min_value=1, max_value=9),
    cache_size=st.sampled_from([0, 1_000]),
    data=st.data(),
)
def test_snapshot_plus_tail_equals_the_full_fold(
    store: LedgerEventStore,
    *,
    history: list[tuple[str, int]],
    interval: int,
    chunk: int,
    cache_size: int,
    data: st.DataObject,
) -> None:
    account_id = uuid4()
    commands: list[Command[Any]] = [
        OpenAccount(account_id=account_id, owner="alice", currency="EUR", correlation_id="t")
    ]
    for kind, amount in history:
        move = DepositMoney if kind == "deposit" else WithdrawMoney
        commands.append(move(account_id=account_id, amount=amount, correlation_id="t"))
    appender = CommandBus(store, snapshot_interval=interval, cache_size=cache_size)

    async def run() -> None:
        try:
            await record(appender, commands, chunk)
        finally:
            await asyncio.to_thread(appender.stop)

    asyncio.run(run())

    head = store.get_account(account_id)
    assert head == full_fold(store, head)
    assert store.snapshots is not None
    snapshots = cast(list[AccountSnapshot], list(store.snapshots.get(account_id)))
    # A snapshot exactly when the history crossed a multiple of the interval.
    assert bool(snapshots) == (head.version >= interval)
    for snapshot in snapshots:
        assert snapshot.state == full_fold(store, head, snapshot.originator_version)

    for version in data.draw(
        st.lists(st.integers(min_value=1, max_value=head.version), max_size=5), label="versions"
    ):
        assert store.get_account(account_id, version) == full_fold(store, head, version)
