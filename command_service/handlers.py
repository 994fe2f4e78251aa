"""Command handlers: one per command type, each a thin call into the pure domain.

In the style of a message bus (``HANDLERS`` maps each command type to its
handler) but synchronous and I/O-free: the appender loads the account, a
handler decides, the appender stores. That keeps every decision testable with
plain values and lets the appender decide many commands before one save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from command_service.commands import (
    CloseAccount,
    Command,
    DepositMoney,
    OpenAccount,
    RequestTransfer,
    WithdrawMoney,
)
from command_service.domain import account as rules
from command_service.domain.account import Account
from command_service.domain.transfer import request_transfer as record_request
from command_service.errors import AccountAlreadyExists, AccountNotFound, PreconditionFailed
from shared_kernel.events import EventMetadata, LedgerEvent, TransferRequested

Handler = Callable[[Any, Account | None, EventMetadata], LedgerEvent]


def _existing(command: Command, account: Account | None) -> Account:
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


HANDLERS: dict[type[Command], Handler] = {
    OpenAccount: open_account,
    DepositMoney: deposit_money,
    WithdrawMoney: withdraw_money,
    CloseAccount: close_account,
}


def metadata_for(command: Command) -> EventMetadata:
    """The event records which request it belongs to, which command caused it, and the
    trace context of that command (so later spans join the command's trace)."""
    return EventMetadata(
        correlation_id=command.correlation_id,
        causation_id=str(command.command_id),
        traceparent=command.traceparent,
    )


def handle(command: Command, account: Account | None) -> LedgerEvent:
    """Decide ``command`` against ``account`` (None when it does not exist).

    Returns the event to record, or raises a ``DomainError`` (including
    not-found, already-exists and version conflicts).
    """
    return HANDLERS[type(command)](command, account, metadata_for(command))


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


def command_name(command: Command) -> str:
    """A stable label for metrics and logs, like ``deposit_money``."""
    if isinstance(command, RequestTransfer):
        return "request_transfer"
    return HANDLERS[type(command)].__name__
