"""The handlers of the commands on accounts and of transfer requests, registered on the bus.

Each account command is decided by a pure function of the command and the
account as it is now (None when it does not exist): testable with plain
values. :func:`on_account` turns such a function into a bus registration:
the unit of work loads the account, the function decides, the answer is the
account after the command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from command_service.aggregate_types import ACCOUNTS
from command_service.bus.aggregates import AggregateType
from command_service.bus.registry import Answer, Registration, register
from command_service.bus.unit_of_work import UnitOfWork
from command_service.commands import (
    AccountCommand,
    CloseAccount,
    Command,
    CommandResult,
    DepositMoney,
    OpenAccount,
    RequestTransfer,
    TransferAccepted,
    WithdrawMoney,
)
from command_service.domain import account as rules
from command_service.domain.account import Account
from command_service.domain.transfer import request_transfer as record_request
from command_service.errors import AccountAlreadyExists, AccountNotFound, PreconditionFailed
from command_service.event_store import LedgerEventStore
from command_service.recorder import RecordedCommand
from shared_kernel.language.events import EventMetadata, LedgerEvent, TransferRequested

C = TypeVar("C", bound=Command[Any])
AccountHandler = Callable[[C, Account | None, EventMetadata], LedgerEvent]


def _existing(command: AccountCommand[Any], account: Account | None) -> Account:
    """The account a command on an existing account acts on, at the version it expects."""
    if account is None:
        raise AccountNotFound(command.account_id)
    expected = command.expected_versions
    if expected is not None and account.version not in expected:
        raise PreconditionFailed(account.id, account.version, expected)
    return account


def open_account(
    command: OpenAccount, account: Account | None, metadata: EventMetadata
) -> LedgerEvent:
    if account is not None:
        raise AccountAlreadyExists(command.account_id)
    return rules.open_account(command.account_id, command.owner, command.currency, metadata)


def deposit_money(
    command: DepositMoney, account: Account | None, metadata: EventMetadata
) -> LedgerEvent:
    return rules.deposit(
        _existing(command, account), command.amount, command.currency, command.reference,
        metadata, channel=command.channel,
    )  # fmt: skip


def withdraw_money(
    command: WithdrawMoney, account: Account | None, metadata: EventMetadata
) -> LedgerEvent:
    return rules.withdraw(
        _existing(command, account), command.amount, command.currency, command.reference, metadata
    )


def close_account(
    command: CloseAccount, account: Account | None, metadata: EventMetadata
) -> LedgerEvent:
    return rules.close(_existing(command, account), metadata)


_ACCOUNT_HANDLERS: dict[type[AccountCommand[Any]], AccountHandler[Any]] = {
    OpenAccount: open_account,
    DepositMoney: deposit_money,
    WithdrawMoney: withdraw_money,
    CloseAccount: close_account,
}


def metadata_for(command: Command[Any]) -> EventMetadata:
    """The event records which request it belongs to, which command caused it, and the
    trace context of that command (so later spans join the command's trace)."""
    return EventMetadata(
        correlation_id=command.correlation_id,
        causation_id=str(command.command_id),
        traceparent=command.traceparent,
    )


def handle(command: AccountCommand[Any], account: Account | None) -> LedgerEvent:
    """Decide an account command against ``account`` (None when it does not exist).

    Returns the event to record, or raises a ``DomainError`` (including
    not-found, already-exists and version conflicts).
    """
    return _ACCOUNT_HANDLERS[type(command)](command, account, metadata_for(command))


def known_new(command: Command[Any]) -> bool:
    """A server-made uuid4 names no existing account; the primary key agrees. Not so
    when recovering: the attempt it replaces may have opened it already."""
    return (
        isinstance(command, OpenAccount)
        and not command.client_supplied_id
        and not command.recovering
    )


def _decide_on_account(command: AccountCommand[Any], uow: UnitOfWork) -> list[LedgerEvent]:
    account = uow.get(ACCOUNTS, command.account_id, known_new=known_new(command))
    return [handle(command, account)]


def _account_after(command: AccountCommand[Any], uow: UnitOfWork) -> Answer:
    after: Account = uow.working[command.account_id]
    return lambda position: CommandResult(after.id, after.version, position, after.balance)


def _account_recorded(
    command: AccountCommand[Any], store: LedgerEventStore, record: RecordedCommand
) -> CommandResult:
    """The account as of the recorded version: an answer given late still reports the
    balance right after the command."""
    account = store.get_account(record.stream_id, version=record.version)
    return CommandResult(account.id, record.version, record.position, account.balance)


def _opened_recorded(
    command: AccountCommand[Any], store: LedgerEventStore, record: RecordedCommand
) -> CommandResult:
    return CommandResult(command.account_id, record.version, record.position, 0)


def _account_reads(command: AccountCommand[Any]) -> Iterable[tuple[AggregateType, UUID]]:
    return () if known_new(command) else ((ACCOUNTS, command.account_id),)


for _type, _handler in _ACCOUNT_HANDLERS.items():
    register(
        _type,
        Registration(
            name=_handler.__name__,
            decide=_decide_on_account,
            answer=_account_after,
            answer_recorded=_opened_recorded if _type is OpenAccount else _account_recorded,
            reads=_account_reads,
        ),
    )


def request_transfer(
    command: RequestTransfer, source: Account | None, target: Account | None
) -> TransferRequested:
    """Decide a transfer request against both accounts as they are now.

    An unknown source is refused (404): without it the transfer has no
    currency and could only fail. An unknown target is recorded, and the
    saga refunds the debit when it is still missing at credit time.
    """
    if source is None:
        raise AccountNotFound(command.account_id)
    return record_request(
        command.transfer_id,
        source,
        to_account=command.to_account,
        target=target,
        amount=command.amount,
        metadata=metadata_for(command),
    )


def _decide_transfer_request(command: RequestTransfer, uow: UnitOfWork) -> list[LedgerEvent]:
    """A transfer request writes only its own new stream, and reads both accounts."""
    source = uow.get(ACCOUNTS, command.account_id)
    target = uow.get(ACCOUNTS, command.to_account)
    return [request_transfer(command, source, target)]


register(
    RequestTransfer,
    Registration(
        name="request_transfer",
        decide=_decide_transfer_request,
        answer=lambda command, uow: lambda position: TransferAccepted(
            command.transfer_id, position
        ),
        answer_recorded=lambda command, store, record: TransferAccepted(
            command.transfer_id, record.position
        ),
        reads=lambda command: ((ACCOUNTS, command.account_id), (ACCOUNTS, command.to_account)),
    ),
)
