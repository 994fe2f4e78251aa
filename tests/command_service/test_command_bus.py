"""The command bus against real PostgreSQL: behaviours, registrations, one unit of work.

Behaviours wrap every dispatch in the order given; a command without a
handler is refused before anything is queued; the unit of work loads
accounts and transfers alike (snapshot + tail) and saves commands on both
kinds of aggregate in one transaction, each seeing the others' effects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from command_service.aggregate_types import ACCOUNTS, TRANSFERS
from command_service.bus.bus import CommandBus
from command_service.bus.inline import InlineBus
from command_service.bus.pipeline import Dispatch
from command_service.bus.unit_of_work import UnitOfWork
from command_service.commands import (
    AccountCommand,
    Command,
    CommandResult,
    DepositMoney,
    OpenAccount,
    RequestTransfer,
    TransferAccepted,
    WithdrawMoney,
)
from command_service.domain.account import InsufficientFunds, InvalidAmount
from command_service.domain.account import apply as apply_to_account
from command_service.domain.transfer import Transfer
from command_service.domain.transfer import apply as apply_to_transfer
from command_service.event_store import LedgerEventStore
from command_service.pending import Result
from command_service.transfer_saga.advance import AdvanceTransfer, StepTaken
from shared_kernel.language.events import EventMetadata, MoneyDeposited, TransferDebited

META = EventMetadata(correlation_id="bus", causation_id="bus")


@pytest.fixture
async def bus(store: LedgerEventStore) -> AsyncIterator[CommandBus]:
    bus = CommandBus(store, snapshot_interval=5)
    bus.start()
    yield bus
    await asyncio.to_thread(bus.stop)


async def open_funded(bus: CommandBus, amount: int) -> CommandResult:
    opened = await bus.dispatch(OpenAccount(account_id=uuid4(), owner="o", currency="EUR",
                                            correlation_id="bus"))  # fmt: skip
    if not amount:
        return opened
    return await bus.dispatch(
        DepositMoney(account_id=opened.account_id, amount=amount, correlation_id="bus")
    )


async def requested(
    bus: CommandBus, store: LedgerEventStore, amount: int
) -> tuple[CommandResult, CommandResult, Transfer]:
    """A source holding 10, an empty target, and a transfer of ``amount`` requested."""
    source, target = await open_funded(bus, 10), await open_funded(bus, 0)
    accepted = await bus.dispatch(
        RequestTransfer(account_id=source.account_id, to_account=target.account_id,
                        amount=amount, correlation_id="bus")
    )  # fmt: skip
    transfer = store.get_transfer(accepted.transfer_id)
    assert transfer is not None
    return source, target, transfer


async def test_behaviours_wrap_every_dispatch_in_order(store: LedgerEventStore) -> None:
    calls: list[str] = []

    def named(name: str) -> Any:
        async def behaviour(command: Command[Any], proceed: Dispatch) -> Result:
            calls.append(f"{name}>")
            try:
                return await proceed(command)
            finally:
                calls.append(f"<{name}")

        return behaviour

    bus = CommandBus(store, behaviours=[named("outer"), named("inner")])
    bus.start()
    try:
        await open_funded(bus, 0)
    finally:
        await asyncio.to_thread(bus.stop)
    assert calls == ["outer>", "inner>", "<inner", "<outer"]


async def test_a_behaviour_may_refuse_before_anything_is_queued(
    store: LedgerEventStore, bus: CommandBus
) -> None:
    async def no_withdrawals(command: Command[Any], proceed: Dispatch) -> Result:
        if isinstance(command, WithdrawMoney):
            raise InvalidAmount("withdrawals are closed today")
        return await proceed(command)

    account = await open_funded(bus, 10)
    guarded = CommandBus(store, behaviours=[no_withdrawals])  # never started: nothing runs
    with pytest.raises(InvalidAmount):
        await guarded.dispatch(
            WithdrawMoney(account_id=account.account_id, amount=1, correlation_id="bus")
        )
    assert guarded.backlog == 0
    assert store.get_account(account.account_id).balance == 10


async def test_a_command_without_a_handler_is_refused_and_writes_nothing(
    bus: CommandBus, store: LedgerEventStore
) -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Unregistered(AccountCommand[CommandResult]):
        pass

    account = await open_funded(bus, 5)
    with pytest.raises(LookupError, match="Unregistered"):
        await bus.dispatch(Unregistered(account_id=account.account_id, correlation_id="bus"))
    assert store.get_account(account.account_id).version == account.version


async def test_the_metrics_behaviour_counts_each_command_by_outcome(bus: CommandBus) -> None:
    def count(outcome: str) -> float:
        labels = {"command": "withdraw_money", "outcome": outcome}
        return REGISTRY.get_sample_value("ledger_commands_total", labels) or 0.0

    ok, refused = count("ok"), count("insufficient-funds")
    account = await open_funded(bus, 3)
    await bus.dispatch(WithdrawMoney(account_id=account.account_id, amount=2, correlation_id="c"))
    with pytest.raises(InsufficientFunds):
        await bus.dispatch(
            WithdrawMoney(account_id=account.account_id, amount=2, correlation_id="c")
        )
    assert (count("ok"), count("insufficient-funds")) == (ok + 1, refused + 1)


async def test_the_unit_of_work_loads_any_registered_type_from_snapshot_and_tail(
    bus: CommandBus, store: LedgerEventStore
) -> None:
    source = await open_funded(bus, 100)
    for _ in range(7):  # crosses the snapshot interval of 5
        source = await bus.dispatch(
            DepositMoney(account_id=source.account_id, amount=1, correlation_id="bus")
        )
    target = await open_funded(bus, 0)
    accepted = await bus.dispatch(
        RequestTransfer(account_id=source.account_id, to_account=target.account_id,
                        amount=10, correlation_id="bus")
    )  # fmt: skip
    assert isinstance(accepted, TransferAccepted)

    uow = UnitOfWork(store)
    account = uow.get(ACCOUNTS, source.account_id)
    transfer = uow.get(TRANSFERS, accepted.transfer_id)
    assert account == store.get_account(source.account_id)
    assert (account.version, account.balance) == (source.version, 107)
    assert transfer == store.get_transfer(accepted.transfer_id)
    assert uow.get(TRANSFERS, uuid4()) is None
    assert {source.account_id, accepted.transfer_id} <= uow.fresh  # safe to refuse on

    # Events of either type go to their own working copy; only accounts are snapshotted.
    deposited = MoneyDeposited(originator_id=account.id, originator_version=account.version + 1,
                               metadata=META, amount=1, currency="EUR",
                               channel="api")  # fmt: skip
    debited = TransferDebited(originator_id=transfer.id, originator_version=2, metadata=META)
    uow.record([deposited, debited])
    assert uow.working[account.id] == apply_to_account(account, deposited)
    assert uow.working[transfer.id] == apply_to_transfer(transfer, debited)
    assert uow.changed == {account.id, transfer.id}
    assert [s.id for s in uow.snapshots_due(1)] == [account.id]


async def test_a_saga_step_and_an_account_command_share_one_transaction(
    bus: CommandBus, store: LedgerEventStore
) -> None:
    """The debit sees nothing of the withdrawal before it in the batch but its effect:
    the source no longer holds enough, so the transfer fails instead of overdrawing."""
    source, _target, transfer = await requested(bus, store, 8)

    inline = InlineBus(store, append_retries=3, snapshot_interval=100)
    withdrawn, stepped = inline.dispatch_together([
        WithdrawMoney(account_id=source.account_id, amount=5, correlation_id="bus"),
        AdvanceTransfer.of(transfer),
    ])  # fmt: skip

    assert isinstance(withdrawn, CommandResult) and withdrawn.balance == 5
    assert isinstance(stepped, StepTaken) and stepped.stepped
    assert (stepped.transfer.status, stepped.transfer.reason) == ("failed", "insufficient-funds")
    assert store.get_account(source.account_id).balance == 5
    assert store.get_transfer(transfer.id) == stepped.transfer


async def test_a_repeated_saga_step_is_found_done_not_taken_twice(
    bus: CommandBus, store: LedgerEventStore
) -> None:
    source, target, seen = await requested(bus, store, 4)
    inline = InlineBus(store, append_retries=3, snapshot_interval=100)
    [first] = inline.dispatch_together([AdvanceTransfer.of(seen)])
    [again] = inline.dispatch_together([AdvanceTransfer.of(seen)])  # the same step, stale

    assert isinstance(first, StepTaken) and first.transfer.status == "debited"
    # Decided again on the transfer as it is now: its next step (the credit) is taken.
    assert isinstance(again, StepTaken) and again.transfer.status == "completed"
    assert store.get_account(source.account_id).balance == 6
    assert store.get_account(target.account_id).balance == 4
