"""The Transfer: a process manager's state, folded from its own stream.

A transfer lives on its own stream (``originator_id`` = transfer id) and goes

    requested -> debited -> completed | refunded
    requested -> failed

Each step is a pure decision (:func:`next_step`) that returns the events to
append TOGETHER in one save: the leg(s) on the accounts and the transfer's
next event. The transfer's event carries the next version of its stream, so
whoever repeats a step (after a crash, or a second saga process) collides on
the store's (stream, version) key and the whole save is rejected: a leg can
never apply twice. Completion also settles the source in the same save, so
"debited" is the only state in which money is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import singledispatch
from typing import Final, Literal
from uuid import UUID

import msgspec

from command_service.domain import streams
from command_service.domain.account import (
    Account,
    AccountIsClosed,
    BalanceLimitExceeded,
    CurrencyMismatch,
    DomainError,
    InsufficientFunds,
    check_amount,
)
from command_service.domain.legs import (
    refund_transfer,
    settle_transfer,
    transfer_in,
    transfer_out,
)
from shared_kernel.language.events import (
    EventMetadata,
    LedgerEvent,
    TransferCompleted,
    TransferDebited,
    TransferFailed,
    TransferRefunded,
    TransferRequested,
)

TransferStatus = Literal["requested", "debited", "completed", "refunded", "failed"]
TERMINAL: Final = frozenset({"completed", "refunded", "failed"})

# Why a transfer failed (nothing moved) or was refunded (the debit came back).
SOURCE_MISSING: Final = "source-missing"
SOURCE_CLOSED: Final = "source-closed"
INSUFFICIENT_FUNDS: Final = "insufficient-funds"
SAME_ACCOUNT: Final = "same-account"
TARGET_MISSING: Final = "target-missing"
TARGET_CLOSED: Final = "target-closed"
CURRENCY_MISMATCH: Final = "currency-mismatch"
BALANCE_LIMIT: Final = "balance-limit"


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger knows of one transfer after its events so far."""

    id: UUID
    version: int
    from_account: UUID
    to_account: UUID
    amount: int
    currency: str
    status: TransferStatus
    reason: str | None = None
    correlation_id: str
    requested_at: datetime
    modified_at: datetime
    #: The request's trace context: the saga's steps carry it on, like the correlation id.
    traceparent: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class SameAccount(DomainError):
    code = "same-account"


def request_transfer(
    transfer_id: UUID,
    source: Account,
    *,
    to_account: UUID,
    target: Account | None,
    amount: int,
    metadata: EventMetadata,
) -> TransferRequested:
    """Record the request. Refused only for what can never succeed.

    A missing or closed target, a closed source or too little money are not
    refused here: they can change before the saga acts, and the saga records
    the outcome (failed or refunded) with its reason. A currency that differs
    can never change, so it is refused when both accounts are known.
    """
    check_amount(amount)
    if source.id == to_account:
        raise SameAccount("a transfer needs two different accounts", account_id=str(source.id))
    if target is not None and target.currency != source.currency:
        raise CurrencyMismatch(
            f"account {source.id} holds {source.currency} and account {target.id}"
            f" holds {target.currency}; a transfer moves one currency",
            from_currency=source.currency,
            to_currency=target.currency,
        )
    return TransferRequested(
        originator_id=transfer_id,
        originator_version=1,
        metadata=metadata,
        from_account=source.id,
        to_account=to_account,
        amount=amount,
        currency=source.currency,
    )


def _step_metadata(transfer: Transfer) -> EventMetadata:
    """A step belongs to the request's correlation and is caused by the transfer's last event."""
    return EventMetadata(
        correlation_id=transfer.correlation_id,
        causation_id=f"{transfer.id}@{transfer.version}",
        traceparent=transfer.traceparent,
    )


def _debit(transfer: Transfer, source: Account | None) -> list[LedgerEvent]:
    meta = _step_metadata(transfer)
    step = streams.next_event_of(transfer, meta)

    def failed(reason: str) -> list[LedgerEvent]:
        return [TransferFailed(**step, reason=reason)]

    if source is None:
        return failed(SOURCE_MISSING)
    if transfer.from_account == transfer.to_account:
        return failed(SAME_ACCOUNT)
    if source.currency != transfer.currency:
        return failed(CURRENCY_MISMATCH)
    try:
        leg = transfer_out(source, transfer.id, transfer.to_account, transfer.amount, meta)
    except AccountIsClosed:
        return failed(SOURCE_CLOSED)
    except InsufficientFunds:
        return failed(INSUFFICIENT_FUNDS)
    debited = TransferDebited(**step)
    return [leg, debited]


def _credit(
    transfer: Transfer, source: Account | None, target: Account | None
) -> list[LedgerEvent]:
    if source is None:
        msg = f"transfer {transfer.id} was debited from {transfer.from_account}, which is missing"
        raise ValueError(msg)
    meta = _step_metadata(transfer)
    step = streams.next_event_of(transfer, meta)
    reason: str
    if target is None:
        reason = TARGET_MISSING
    else:
        try:
            credit = transfer_in(
                target,
                transfer.id,
                from_account=transfer.from_account,
                amount=transfer.amount,
                currency=transfer.currency,
                metadata=meta,
            )
        except AccountIsClosed:
            reason = TARGET_CLOSED
        except CurrencyMismatch:
            reason = CURRENCY_MISMATCH
        except BalanceLimitExceeded:
            reason = BALANCE_LIMIT
        else:
            completed = TransferCompleted(**step)
            return [credit, completed, settle_transfer(source, transfer.id, meta)]
    refund = refund_transfer(
        source,
        transfer.id,
        to_account=transfer.to_account,
        amount=transfer.amount,
        reason=reason,
        metadata=meta,
    )
    refunded = TransferRefunded(**step, reason=reason)
    return [refund, refunded]


def next_step(
    transfer: Transfer, source: Account | None, target: Account | None
) -> list[LedgerEvent]:
    """The events of the transfer's next step, to append in ONE save; [] when it is over.

    ``source`` and ``target`` are the accounts as they are now (None when
    missing). Requested: debit the source, or fail. Debited: credit the
    target and settle the source, or refund the source.
    """
    if transfer.status == "requested":
        return _debit(transfer, source)
    if transfer.status == "debited":
        return _credit(transfer, source, target)
    return []


def apply(transfer: Transfer | None, event: LedgerEvent) -> Transfer:
    """The state after ``event``: the one place that knows how each event changes a transfer."""
    if isinstance(event, TransferRequested):
        return Transfer(
            id=event.originator_id,
            version=event.originator_version,
            from_account=event.from_account,
            to_account=event.to_account,
            amount=event.amount,
            currency=event.currency,
            status="requested",
            correlation_id=event.metadata.correlation_id,
            traceparent=event.metadata.traceparent,
            requested_at=event.timestamp,
            modified_at=event.timestamp,
        )
    return streams.evolve(transfer, event, TransferRequested, _changes)


def _changes(event: LedgerEvent, transfer: Transfer) -> dict[str, object]:
    status, reason = _outcome(event, transfer)
    return {"status": status, "reason": reason}


@singledispatch
def _outcome(event: LedgerEvent, transfer: Transfer) -> tuple[TransferStatus, str | None]:
    """The status and reason ``event`` leaves ``transfer`` in; each event type registers."""
    streams.foreign(event, "transfer")


@_outcome.register
def _debited(event: TransferDebited, transfer: Transfer) -> tuple[TransferStatus, str | None]:
    return "debited", transfer.reason


@_outcome.register
def _completed(event: TransferCompleted, transfer: Transfer) -> tuple[TransferStatus, str | None]:
    return "completed", transfer.reason


@_outcome.register
def _refunded(event: TransferRefunded, transfer: Transfer) -> tuple[TransferStatus, str | None]:
    return "refunded", event.reason


@_outcome.register
def _failed(event: TransferFailed, transfer: Transfer) -> tuple[TransferStatus, str | None]:
    return "failed", event.reason


def fold(transfer: Transfer | None, events: Iterable[LedgerEvent]) -> Transfer | None:
    """Fold ``events`` onto ``transfer`` (None before the first)."""
    return streams.fold(apply, transfer, events)


#: Every event type of a transfer stream.
TRANSFER_EVENTS: Final = (
    TransferRequested,
    TransferDebited,
    TransferCompleted,
    TransferRefunded,
    TransferFailed,
)


def is_transfer_event(event: LedgerEvent) -> bool:
    return isinstance(event, TRANSFER_EVENTS)
