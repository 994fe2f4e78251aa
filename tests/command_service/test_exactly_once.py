"""One command, one recording: whatever retries, takes over or loses a reply.

The store refuses a second recording of a command id (``ledger_commands``'s
primary key, written in the same transaction as the events), and the
appender answers such a command from what was recorded. Each test counts the
command's effect in the store itself, independently of what was answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.utils import get_topic, retry
from prometheus_client import REGISTRY

from command_service.bus.bus import CommandBus
from command_service.commands import (
    CommandResult,
    DepositMoney,
    OpenAccount,
    RequestTransfer,
    TransferAccepted,
    WithdrawMoney,
)
from command_service.errors import CommandNotRecorded
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.recorder import LedgerRecorder
from tests.support.sql import value


class ReplyLosingRecorder(LedgerRecorder):
    """Commits, then reports the connection lost: the COMMIT's reply never came.

    Decorated like the library's own ``insert_events``, so its retry runs
    exactly as it would after a real lost reply: the INSERT is sent again.
    """

    replies_to_lose = 0

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.01)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        ids = LedgerRecorder.insert_events.__wrapped__(  # type: ignore[attr-defined]
            self, stored_events, **kwargs
        )
        if ReplyLosingRecorder.replies_to_lose > 0:
            ReplyLosingRecorder.replies_to_lose -= 1
            raise OperationalError("server closed the connection unexpectedly (reply lost)")
        return ids


class ReplyLosingStore(LedgerEventStore):
    """The same store, but its lost replies are not retried by the library (unknown outcome)."""

    name = LedgerEventStore.name  # the library names tables after the class otherwise
    replies_to_lose = 0

    def record(self, events: Any, commands: Any = (), snapshots: Any = ()) -> list[int]:
        positions = super().record(events, commands, snapshots)
        if ReplyLosingStore.replies_to_lose > 0:
            ReplyLosingStore.replies_to_lose -= 1
            raise OperationalError("server closed the connection unexpectedly (reply lost)")
        return positions


async def started(store: LedgerEventStore, **options: Any) -> CommandBus:
    appender = CommandBus(store, snapshot_interval=100, append_retries=3, **options)
    appender.start()
    return appender


@pytest.fixture
async def appender(store: LedgerEventStore) -> AsyncIterator[CommandBus]:
    appender = await started(store)
    yield appender
    await asyncio.to_thread(appender.stop)


async def open_funded(appender: CommandBus, amount: int) -> UUID:
    account_id = uuid4()
    await appender.dispatch(OpenAccount(account_id=account_id, correlation_id="t", owner="o",
                                      currency="EUR"))  # fmt: skip
    await appender.dispatch(DepositMoney(account_id=account_id, correlation_id="t", amount=amount))
    return account_id


def already_recorded(when: str) -> float:
    recorded = REGISTRY.get_sample_value("ledger_commands_already_recorded_total", {"when": when})
    return recorded or 0.0


def events_caused_by(database_url: str, command_id: UUID) -> int:
    """How many events name ``command_id`` as their cause: read from the stored bytes."""
    needle = f'"causation_id":"{command_id}"'.encode()
    query = "SELECT count(*) FROM ledger_events WHERE position(%s::bytea IN state) > 0"
    return int(value(database_url, query, (needle,)))


def balance_events(database_url: str, account_id: UUID) -> int:
    query = "SELECT count(*) FROM ledger_events WHERE originator_id = %s"
    return int(value(database_url, query, (account_id,)))


async def test_a_lost_commit_reply_retried_by_the_library_records_the_deposit_once(
    database_url: str,
) -> None:
    store = LedgerEventStore(
        env={**event_store_env(database_url),
             "APPLICATION_RECORDER_TOPIC": get_topic(ReplyLosingRecorder)}
    )  # fmt: skip
    appender = await started(store)
    try:
        account_id = await open_funded(appender, 100)
        before = already_recorded("retried-save")
        deposit = DepositMoney(account_id=account_id, correlation_id="t", amount=25)
        ReplyLosingRecorder.replies_to_lose = 1
        result = await appender.dispatch(deposit)
        assert ReplyLosingRecorder.replies_to_lose == 0, "the reply was never lost"
        # Answered from the record: the version and balance right after the one deposit.
        assert result == CommandResult(account_id, 3, result.position, 125)
        assert events_caused_by(database_url, deposit.command_id) == 1
        assert balance_events(database_url, account_id) == 3
        assert already_recorded("retried-save") == before + 1
        # The writer goes on: the account's next command sees one deposit of 25.
        after = await appender.dispatch(
            WithdrawMoney(account_id=account_id, correlation_id="t", amount=125)
        )
        assert (after.version, after.balance) == (4, 0)
    finally:
        await asyncio.to_thread(appender.stop)
        store.close()


async def test_a_save_whose_outcome_is_unknown_is_answered_from_what_the_store_recorded(
    database_url: str,
) -> None:
    store = ReplyLosingStore(env=event_store_env(database_url))
    appender = await started(store)
    try:
        account_id = await open_funded(appender, 100)
        deposits = [
            DepositMoney(account_id=account_id, correlation_id="t", amount=amount)
            for amount in (1, 2, 3)
        ]
        ReplyLosingStore.replies_to_lose = 1
        results = await asyncio.gather(*(appender.dispatch(d) for d in deposits))
        assert ReplyLosingStore.replies_to_lose == 0
        assert sorted(r.balance for r in results)[-1] == 106
        assert len({r.version for r in results}) == 3
        for deposit in deposits:
            assert events_caused_by(database_url, deposit.command_id) == 1
        assert balance_events(database_url, account_id) == 5
    finally:
        await asyncio.to_thread(appender.stop)
        store.close()


async def test_the_same_command_again_is_answered_from_the_record_not_decided_again(
    appender: CommandBus, database_url: str
) -> None:
    account_id = await open_funded(appender, 100)
    withdrawal = WithdrawMoney(account_id=account_id, correlation_id="t", amount=100)
    first = await appender.dispatch(withdrawal)
    # Decided again it would be refused (the balance is 0 now). An attempt that takes
    # over the command (the idempotency layer marks it recovering) gets the first answer.
    recovering = await appender.dispatch(
        WithdrawMoney(account_id=account_id, correlation_id="t", amount=100,
                      command_id=withdrawal.command_id, recovering=True)
    )  # fmt: skip
    assert first == recovering == CommandResult(account_id, 3, first.position, 0)
    # Any other path that submits it again cannot record it a second time either.
    deposit = DepositMoney(account_id=account_id, correlation_id="t", amount=100)
    await appender.dispatch(deposit)
    again = await appender.dispatch(withdrawal)
    assert again == first
    assert events_caused_by(database_url, withdrawal.command_id) == 1
    assert events_caused_by(database_url, deposit.command_id) == 1


async def test_two_attempts_at_one_command_in_one_batch_record_it_once(
    appender: CommandBus, store: LedgerEventStore, database_url: str
) -> None:
    account_id = await open_funded(appender, 1)
    deposit = DepositMoney(account_id=account_id, correlation_id="t", amount=7)
    batching = CommandBus(store)  # not started: both attempts queue, then go as one batch
    try:
        attempts = [asyncio.ensure_future(batching.dispatch(deposit)) for _ in range(2)]
        await asyncio.sleep(0)
        assert batching.backlog == 2
        batching.start()
        first, second = await asyncio.gather(*attempts)
        assert first == second == CommandResult(account_id, 3, first.position, 8)
        assert events_caused_by(database_url, deposit.command_id) == 1
    finally:
        await asyncio.to_thread(batching.stop)


async def test_a_takeover_while_the_first_attempt_waits_to_commit_adopts_its_answer(
    database_url: str,
) -> None:
    """The first attempt is stuck behind a lock (its lease runs out); a second process
    takes over the same command id. It waits for the first to end, then answers from it."""
    first_store = LedgerEventStore(env=event_store_env(database_url))
    second_store = LedgerEventStore(env=event_store_env(database_url))
    first, second = await started(first_store), await started(second_store)
    try:
        account_id = await open_funded(first, 50)
        withdrawal = WithdrawMoney(account_id=account_id, correlation_id="t", amount=50)
        blocker = psycopg.connect(database_url)
        blocker.execute("LOCK TABLE ledger_events IN EXCLUSIVE MODE")
        first_attempt = asyncio.ensure_future(first.dispatch(withdrawal))
        await wait_for_lock_waiters(database_url, 1)
        second_attempt = asyncio.ensure_future(
            second.dispatch(
                WithdrawMoney(account_id=account_id, correlation_id="t", amount=50,
                              command_id=withdrawal.command_id, recovering=True)
            )
        )  # fmt: skip
        await wait_for_lock_waiters(database_url, 2)
        blocker.rollback()
        blocker.close()
        answers = await asyncio.gather(first_attempt, second_attempt)
        assert answers[0] == answers[1] == CommandResult(account_id, 3, answers[0].position, 0)
        assert events_caused_by(database_url, withdrawal.command_id) == 1
    finally:
        for appender, store in ((first, first_store), (second, second_store)):
            await asyncio.to_thread(appender.stop)
            store.close()


_LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
)


async def wait_for_lock_waiters(database_url: str, count: int, within: float = 10.0) -> None:
    """Until ``count`` sessions of this database wait for a lock."""
    dbname = database_url.rsplit("/", 1)[1]
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if int(value(database_url, _LOCK_WAITERS, (dbname,))) >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{count} lock waiters never came"
        await asyncio.sleep(0.02)


async def test_a_transfer_request_recorded_before_is_answered_and_never_wedges_the_writer(
    appender: CommandBus, database_url: str
) -> None:
    source = await open_funded(appender, 100)
    target = await open_funded(appender, 1)
    request = RequestTransfer(account_id=source, to_account=target, amount=10, correlation_id="t")
    accepted = await appender.dispatch(request)
    assert await appender.dispatch(request) == accepted
    # A transfer stream taken without a command record (as a store written before
    # command ids were recorded could hold): refused a bounded number of times, then
    # answered, and the writer goes on with the next command.
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM ledger_commands WHERE command_id = %s", (request.command_id,))
    with pytest.raises(CommandNotRecorded):
        await asyncio.wait_for(appender.dispatch(request), timeout=30)
    deposit = await appender.dispatch(DepositMoney(account_id=target, correlation_id="t", amount=1))
    assert deposit.balance == 2
    assert isinstance(accepted, TransferAccepted)
