"""The append path against real PostgreSQL, without HTTP.

Commands submitted together are decided in order and saved in one
transaction; a refusal fails only its own command; a conflict caused by an
independent writer is retried (no expected version) or reported (expected
version); positions are the store's real notification ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from command_service.bus.bus import CommandBus
from command_service.commands import (
    CloseAccount,
    Command,
    CommandResult,
    DepositMoney,
    OpenAccount,
    WithdrawMoney,
)
from command_service.domain.account import AccountNotEmpty, InsufficientFunds
from command_service.errors import (
    AccountNotFound,
    AppenderStopped,
    PreconditionFailed,
    VersionConflict,
)
from command_service.event_store import LedgerEventStore, event_store_env
from shared_kernel.language.events import EventMetadata, MoneyDeposited
from tests.support.sql import rows


@pytest.fixture
async def appender(store: LedgerEventStore) -> AsyncIterator[CommandBus]:
    appender = CommandBus(store, snapshot_interval=100, append_retries=3)
    yield appender
    await asyncio.to_thread(appender.stop)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def submit_together(appender: CommandBus, commands: list[Command[Any]]) -> list[object]:
    """Queue every command before the writer thread runs, so they form one batch."""
    tasks = [asyncio.ensure_future(appender.dispatch(command)) for command in commands]
    await asyncio.sleep(0)  # each task runs up to awaiting its answer: all are queued
    assert appender.backlog == len(commands)
    appender.start()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def committing_transactions(database_url: str, account_id: UUID) -> set[int]:
    query = "SELECT xmin::text FROM ledger_events WHERE originator_id = %s"
    return {int(xmin) for (xmin,) in rows(database_url, query, (account_id,))}


def notification_ids(database_url: str, account_id: UUID) -> dict[int, int]:
    query = (
        "SELECT originator_version, notification_id FROM ledger_events WHERE originator_id = %s"
    )
    return {version: position for version, position in rows(database_url, query, (account_id,))}


def deposit_by_another_writer(
    database_url: str, account_id: UUID, *, version: int, amount: int
) -> None:
    """Another process's store appends a deposit at ``version``, behind the appender's back."""
    other = LedgerEventStore(env=event_store_env(database_url))
    try:
        other.save(
            MoneyDeposited(
                originator_id=account_id,
                originator_version=version,
                metadata=EventMetadata(correlation_id="other", causation_id="other"),
                amount=amount,
                currency="EUR",
                channel="branch",
            )
        )
    finally:
        other.close()


def deposit(account_id: UUID, amount: int, expected: int | None = None) -> DepositMoney:
    return DepositMoney(
        account_id=account_id,
        amount=amount,
        correlation_id="test",
        expected_versions=None if expected is None else frozenset({expected}),
    )


def withdrawal(account_id: UUID, amount: int, expected: int | None = None) -> WithdrawMoney:
    return WithdrawMoney(
        account_id=account_id,
        amount=amount,
        correlation_id="test",
        expected_versions=None if expected is None else frozenset({expected}),
    )


def open_command(account_id: UUID) -> OpenAccount:
    return OpenAccount(account_id=account_id, owner="alice", currency="EUR", correlation_id="t")


async def test_a_batch_decides_in_order_and_saves_in_one_transaction(
    appender: CommandBus, database_url: str
) -> None:
    account_id, missing = uuid4(), uuid4()
    results = await submit_together(
        appender,
        [
            open_command(account_id),
            deposit(account_id, 50),
            withdrawal(account_id, 80),  # sees the deposit before it: 50 < 80
            withdrawal(account_id, 30),
            deposit(missing, 10),
            deposit(account_id, 5, expected=4),  # open, deposit, withdrawal: version 3
            deposit(account_id, 7, expected=3),
        ],
    )
    opened, deposited, overdraft, withdrawn, not_found, stale, expected_ok = results
    assert isinstance(overdraft, InsufficientFunds)
    assert isinstance(not_found, AccountNotFound)
    assert isinstance(stale, PreconditionFailed)
    assert stale.context["current_version"] == 3 and stale.context["expected_versions"] == [4]
    accepted = [
        r for r in (opened, deposited, withdrawn, expected_ok) if isinstance(r, CommandResult)
    ]
    assert len(accepted) == 4
    assert [(r.version, r.balance) for r in accepted] == [(1, 0), (2, 50), (3, 20), (4, 27)]

    # One transaction wrote all four events, and each answer names its real position.
    assert len(committing_transactions(database_url, account_id)) == 1
    positions = notification_ids(database_url, account_id)
    assert {r.version: r.position for r in accepted} == positions
    assert sorted(positions.values()) == [r.position for r in accepted]


async def test_a_conflict_with_another_writer_is_retried_without_expected_version(
    appender: CommandBus, store: LedgerEventStore, database_url: str
) -> None:
    appender.start()
    account_id = uuid4()
    await appender.dispatch(open_command(account_id))
    await appender.dispatch(deposit(account_id, 100))  # the appender now caches version 2

    deposit_by_another_writer(database_url, account_id, version=3, amount=1)
    conflicts_before = counter("ledger_append_conflicts_total")

    result = await appender.dispatch(withdrawal(account_id, 50))

    # Decided on the stale cache (version 2), its event collides with the other
    # writer's version 3; decided again on the reloaded account, it lands at 4.
    assert counter("ledger_append_conflicts_total") == conflicts_before + 1
    assert (result.version, result.balance) == (4, 51)
    assert store.get_account(account_id).balance == 51
    assert notification_ids(database_url, account_id)[4] == result.position


async def test_a_conflict_is_reported_when_the_client_expected_a_version(
    appender: CommandBus, store: LedgerEventStore, database_url: str
) -> None:
    appender.start()
    account_id = uuid4()
    await appender.dispatch(open_command(account_id))
    await appender.dispatch(deposit(account_id, 100))

    deposit_by_another_writer(database_url, account_id, version=3, amount=5)
    conflicts_before = counter("ledger_append_conflicts_total")

    with pytest.raises(PreconditionFailed) as conflict:
        await appender.dispatch(deposit(account_id, 1, expected=2))

    assert counter("ledger_append_conflicts_total") == conflicts_before + 1
    assert conflict.value.context["current_version"] == 3
    assert conflict.value.context["expected_versions"] == [2]
    assert store.get_account(account_id).balance == 105


async def test_retries_are_bounded(store: LedgerEventStore, database_url: str) -> None:
    appender = CommandBus(store, append_retries=0)
    appender.start()
    try:
        account_id = uuid4()
        await appender.dispatch(open_command(account_id))
        deposit_by_another_writer(database_url, account_id, version=2, amount=5)
        with pytest.raises(VersionConflict) as conflict:
            await appender.dispatch(deposit(account_id, 1))
        assert conflict.value.context["current_version"] == 2
        assert "expected_versions" not in conflict.value.context
        # The conflict evicted the stale state: the next command sees the store.
        assert (await appender.dispatch(deposit(account_id, 1))).version == 3
    finally:
        await asyncio.to_thread(appender.stop)


async def test_a_refusal_is_never_decided_on_a_stale_cache(
    appender: CommandBus, database_url: str
) -> None:
    appender.start()
    account_id = uuid4()
    await appender.dispatch(open_command(account_id))  # cached: balance 0
    deposit_by_another_writer(database_url, account_id, version=2, amount=50)

    result = await appender.dispatch(withdrawal(account_id, 50))

    assert (result.version, result.balance) == (3, 0)


async def test_stop_answers_every_queued_command_then_refuses_new_ones(
    appender: CommandBus,
) -> None:
    account_id = uuid4()
    commands: list[Command[Any]] = [open_command(account_id)]
    commands += [deposit(account_id, 1) for _ in range(20)]
    commands.append(CloseAccount(account_id=account_id, correlation_id="t"))
    tasks = [asyncio.ensure_future(appender.dispatch(command)) for command in commands]
    await asyncio.sleep(0)
    assert appender.backlog == len(commands)

    await asyncio.to_thread(appender.stop)  # never started: stop still drains the queue

    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r.version for r in results[:-1] if isinstance(r, CommandResult)] == list(range(1, 22))
    assert isinstance(results[-1], AccountNotEmpty)
    with pytest.raises(AppenderStopped):
        await appender.dispatch(deposit(account_id, 1))
