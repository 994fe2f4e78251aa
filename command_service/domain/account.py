"""The Account aggregate as a functional core.

An account's state is an immutable value folded from its events. Each command
is a function that checks the rules against the current state and returns
the event that records the decision; it never mutates anything and never
touches a database, so every rule can be tested with plain values.

The eventsourcing library stores the events and rebuilds the state with
:func:`fold` (see ``command_service.event_store``). The legs of transfers
are decided in :mod:`command_service.domain.legs`; how each leg changes an
account is still known only here, in :func:`apply`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import singledispatch
from typing import Any, Literal
from uuid import UUID

import msgspec

from command_service.domain import streams
from shared_kernel.language.events import (
    AccountClosed,
    AccountOpened,
    DepositChannel,
    EventMetadata,
    FundsHeld,
    HeldFundsReleased,
    LedgerEvent,
    MoneyDeposited,
    MoneyRefunded,
    MoneyTransferredIn,
    MoneyTransferredOut,
    MoneyWithdrawn,
    TransferSettled,
)
from shared_kernel.language.money import MAX_AMOUNT, MAX_BALANCE, is_currency

AccountStatus = Literal["open", "closed"]


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger knows of one account after its events so far."""

    id: UUID
    version: int
    owner: str
    currency: str
    balance: int
    status: AccountStatus
    opened_at: datetime
    modified_at: datetime
    #: Outgoing transfers debited here and not yet settled or refunded. While
    #: any is pending the account may not close, so a refund always finds it open.
    pending_transfers: frozenset[UUID] = frozenset()
    #: The amount reserved by active holds, and which holds they are: the balance
    #: minus ``held`` is what withdrawals, transfers and new holds may take.
    held: int = 0
    holds: frozenset[UUID] = frozenset()

    @property
    def available(self) -> int:
        return self.balance - self.held


class DomainError(Exception):
    """A command the rules refuse. ``code`` is stable for clients; no transport is named here
    (the HTTP layer maps each type to a status: :mod:`command_service.http.refusals`)."""

    code = "domain-rule"

    def __init__(self, detail: str, **context: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class InvalidAmount(DomainError):
    code = "invalid-amount"


class InvalidCurrency(DomainError):
    code = "invalid-currency"


class InvalidOwner(DomainError):
    code = "invalid-owner"


class CurrencyMismatch(DomainError):
    code = "currency-mismatch"


class InsufficientFunds(DomainError):
    code = "insufficient-funds"


class BalanceLimitExceeded(DomainError):
    code = "balance-limit-exceeded"


class AccountIsClosed(DomainError):
    code = "account-closed"


class AccountNotEmpty(DomainError):
    code = "account-not-empty"


class TransfersPending(DomainError):
    code = "transfers-pending"


OWNER_MAX_LENGTH = 200


def check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount("amount must be an integer count of minor units")
    if not 0 < amount <= MAX_AMOUNT:
        raise InvalidAmount(f"amount must be between 1 and {MAX_AMOUNT} minor units", amount=amount)


def check_open(account: Account) -> None:
    if account.status == "closed":
        raise AccountIsClosed(f"account {account.id} is closed", account_id=str(account.id))


def check_currency(account: Account, currency: str | None) -> str:
    if currency is not None and currency != account.currency:
        raise CurrencyMismatch(
            f"account {account.id} holds {account.currency}, not {currency}",
            account_currency=account.currency,
        )
    return account.currency


def check_credit(account: Account, amount: int, currency: str | None) -> str:
    """The rules of money coming in (a deposit, a transfer's credit); returns the currency."""
    check_amount(amount)
    check_open(account)
    currency = check_currency(account, currency)
    if account.balance + amount > MAX_BALANCE:
        raise BalanceLimitExceeded(f"a balance may not exceed {MAX_BALANCE} minor units")
    return currency


def check_funds(account: Account, amount: int, action: str) -> None:
    """The account has ``amount`` available (not held), which it would ``action``
    (withdraw, transfer, hold)."""
    if amount > account.available:
        raise InsufficientFunds(
            f"account {account.id} has {account.available} available, cannot {action} {amount}",
            balance=account.balance,
            available=account.available,
        )


def open_account(
    account_id: UUID, owner: str, currency: str, metadata: EventMetadata
) -> AccountOpened:
    owner = owner.strip()
    if not owner or len(owner) > OWNER_MAX_LENGTH:
        raise InvalidOwner(f"owner must be 1 to {OWNER_MAX_LENGTH} characters")
    if not is_currency(currency):
        raise InvalidCurrency(f"{currency!r} is not an ISO 4217 currency code")
    return AccountOpened(
        originator_id=account_id,
        originator_version=1,
        metadata=metadata,
        owner=owner,
        currency=currency,
    )


def deposit(
    account: Account,
    amount: int,
    currency: str | None,
    reference: str | None,
    metadata: EventMetadata,
    *,
    channel: DepositChannel = "api",
) -> MoneyDeposited:
    currency = check_credit(account, amount, currency)
    return MoneyDeposited(
        **streams.next_event_of(account, metadata),
        amount=amount,
        currency=currency,
        reference=reference,
        channel=channel,
    )


def withdraw(
    account: Account,
    amount: int,
    currency: str | None,
    reference: str | None,
    metadata: EventMetadata,
) -> MoneyWithdrawn:
    check_amount(amount)
    check_open(account)
    currency = check_currency(account, currency)
    check_funds(account, amount, "withdraw")
    return MoneyWithdrawn(
        **streams.next_event_of(account, metadata),
        amount=amount,
        currency=currency,
        reference=reference,
    )


def close(account: Account, metadata: EventMetadata) -> AccountClosed:
    check_open(account)
    if account.balance != 0:
        raise AccountNotEmpty(
            f"account {account.id} still holds {account.balance}; only an empty account closes",
            balance=account.balance,
        )
    if account.pending_transfers:
        raise TransfersPending(
            f"account {account.id} has {len(account.pending_transfers)} outgoing transfer(s)"
            " still in flight; it closes once they complete or are refunded",
            pending_transfers=sorted(str(t) for t in account.pending_transfers),
        )
    return AccountClosed(**streams.next_event_of(account, metadata))


def apply(account: Account | None, event: LedgerEvent) -> Account:
    """The state after ``event``: the one place that knows how each event changes an account."""
    if isinstance(event, AccountOpened):
        return Account(
            id=event.originator_id,
            version=event.originator_version,
            owner=event.owner,
            currency=event.currency,
            balance=0,
            status="open",
            opened_at=event.timestamp,
            modified_at=event.timestamp,
        )
    return streams.evolve(account, event, AccountOpened, _changes)


@singledispatch
def _changes(event: LedgerEvent, account: Account) -> dict[str, Any]:
    """What ``event`` changes on ``account`` besides its version; each event type registers."""
    streams.foreign(event, "account")


@_changes.register
def _deposited(event: MoneyDeposited, account: Account) -> dict[str, Any]:
    return {"balance": account.balance + event.amount}


@_changes.register
def _withdrawn(event: MoneyWithdrawn, account: Account) -> dict[str, Any]:
    return {"balance": account.balance - event.amount}


@_changes.register
def _closed(event: AccountClosed, account: Account) -> dict[str, Any]:
    return {"status": "closed"}


@_changes.register
def _transferred_out(event: MoneyTransferredOut, account: Account) -> dict[str, Any]:
    return {
        "balance": account.balance - event.amount,
        "pending_transfers": account.pending_transfers | {event.transfer_id},
    }


@_changes.register
def _transferred_in(event: MoneyTransferredIn, account: Account) -> dict[str, Any]:
    return {"balance": account.balance + event.amount}


@_changes.register
def _settled(event: TransferSettled, account: Account) -> dict[str, Any]:
    return {"pending_transfers": account.pending_transfers - {event.transfer_id}}


@_changes.register
def _refunded(event: MoneyRefunded, account: Account) -> dict[str, Any]:
    return {
        "balance": account.balance + event.amount,
        "pending_transfers": account.pending_transfers - {event.transfer_id},
    }


@_changes.register
def _held(event: FundsHeld, account: Account) -> dict[str, Any]:
    return {"held": account.held + event.amount, "holds": account.holds | {event.hold_id}}


@_changes.register
def _hold_ended(event: HeldFundsReleased, account: Account) -> dict[str, Any]:
    return {"held": account.held - event.amount, "holds": account.holds - {event.hold_id}}


#: Every event type of an account stream: its first, then those :func:`_changes` registered.
ACCOUNT_EVENTS: tuple[type[LedgerEvent], ...] = (
    AccountOpened,
    *(t for t in _changes.registry if t is not object),
)


def fold(account: Account | None, events: Iterable[LedgerEvent]) -> Account | None:
    """Fold ``events`` onto ``account`` (None before the first)."""
    return streams.fold(apply, account, events)
