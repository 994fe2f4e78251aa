"""The Hold (an authorisation, as card payments use them): its own stream, pure decisions.

A hold lives on its own stream (``originator_id`` = hold id) and goes

    placed -> captured | released | expired

What it reserves is recorded on the account too (``FundsHeld``, then
``HeldFundsReleased``), in the same save as the hold's own event: the
account's version key keeps two decisions from spending one available
amount, and the hold's version key makes a second end of one hold (a
capture racing a release, an expiry run twice) impossible. A capture
withdraws the captured part in that same save, so the money leaves the
account exactly like a withdrawal does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import singledispatch
from typing import Final, Literal
from uuid import UUID

import msgspec

from command_service.domain import streams
from command_service.domain.account import (
    Account,
    DomainError,
    check_amount,
    check_funds,
    check_open,
)
from shared_kernel.language.events import (
    EventMetadata,
    FundsHeld,
    HeldFundsReleased,
    HoldCaptured,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    LedgerEvent,
    MoneyWithdrawn,
)

HoldStatus = Literal["placed", "captured", "released", "expired"]
#: The longest a hold may stay placed before its deadline releases it (30 days).
MAX_EXPIRY_SECONDS: Final = 30 * 24 * 3600


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger knows of one hold after its events so far."""

    id: UUID
    version: int
    account_id: UUID
    amount: int
    currency: str
    reference: str | None
    status: HoldStatus
    expires_at: datetime
    placed_at: datetime
    modified_at: datetime
    #: The part withdrawn by the capture (0 until captured).
    captured: int = 0

    @property
    def active(self) -> bool:
        return self.status == "placed"


class HoldNotFound(DomainError):
    code = "hold-not-found"

    def __init__(self, hold_id: UUID) -> None:
        super().__init__(f"there is no hold {hold_id}", hold_id=str(hold_id))


class HoldNotActive(DomainError):
    """The hold was captured, released or expired already: it ends once."""

    code = "hold-not-active"


class CaptureExceedsHold(DomainError):
    code = "capture-exceeds-hold"


class InvalidExpiry(DomainError):
    code = "invalid-expiry"


def place_hold(
    hold_id: UUID,
    account: Account,
    *,
    amount: int,
    reference: str | None,
    expires_at: datetime,
    metadata: EventMetadata,
) -> list[LedgerEvent]:
    """Reserve ``amount`` of what ``account`` has available; refused like a withdrawal."""
    check_amount(amount)
    check_open(account)
    check_funds(account, amount, "hold")
    held = FundsHeld(
        **streams.next_event_of(account, metadata),
        hold_id=hold_id,
        amount=amount,
        currency=account.currency,
    )
    placed = HoldPlaced(
        originator_id=hold_id,
        originator_version=1,
        metadata=metadata,
        account_id=account.id,
        amount=amount,
        currency=account.currency,
        reference=reference,
        expires_at=expires_at,
    )
    return [held, placed]


def expiry_after(now: datetime, seconds: int) -> datetime:
    if isinstance(seconds, bool) or not 0 < seconds <= MAX_EXPIRY_SECONDS:
        raise InvalidExpiry(f"expires_in_seconds must be between 1 and {MAX_EXPIRY_SECONDS}")
    return now + timedelta(seconds=seconds)


def _check_active(hold: Hold) -> None:
    if not hold.active:
        raise HoldNotActive(
            f"hold {hold.id} is {hold.status}; a hold ends once",
            hold_id=str(hold.id),
            hold_status=hold.status,
        )


def _release_on_account(hold: Hold, account: Account, metadata: EventMetadata) -> LedgerEvent:
    if hold.id not in account.holds:
        # The hold and its reservation end together, so the hold read here is older
        # than the account: a refusal, which the bus decides again on fresh reads.
        raise HoldNotActive(
            f"account {account.id} holds nothing for hold {hold.id}; it has ended",
            hold_id=str(hold.id),
        )
    return HeldFundsReleased(
        **streams.next_event_of(account, metadata),
        hold_id=hold.id,
        amount=hold.amount,
        currency=hold.currency,
    )


def capture_hold(
    hold: Hold, account: Account, amount: int, metadata: EventMetadata
) -> list[LedgerEvent]:
    """Withdraw ``amount`` (at most the held amount) and free the rest, in one save."""
    _check_active(hold)
    check_amount(amount)
    if amount > hold.amount:
        raise CaptureExceedsHold(
            f"hold {hold.id} holds {hold.amount}, cannot capture {amount}",
            held=hold.amount,
        )
    released = _release_on_account(hold, account, metadata)
    withdrawn = MoneyWithdrawn(
        originator_id=account.id,
        originator_version=account.version + 2,
        metadata=metadata,
        amount=amount,
        currency=hold.currency,
        reference=hold.reference,
    )
    captured = HoldCaptured(
        **streams.next_event_of(hold, metadata),
        amount=amount,
        released=hold.amount - amount,
    )
    return [captured, released, withdrawn]


def release_hold(hold: Hold, account: Account, metadata: EventMetadata) -> list[LedgerEvent]:
    """Free the whole held amount at the client's request."""
    _check_active(hold)
    released = HoldReleased(**streams.next_event_of(hold, metadata))
    return [released, _release_on_account(hold, account, metadata)]


def expire_hold(
    hold: Hold, account: Account, now: datetime, metadata: EventMetadata
) -> list[LedgerEvent]:
    """Free a hold whose deadline passed; [] when it has ended or is not due yet, so an
    expiry that runs twice (or early) changes nothing."""
    if not hold.active or now < hold.expires_at:
        return []
    expired = HoldExpired(**streams.next_event_of(hold, metadata))
    return [expired, _release_on_account(hold, account, metadata)]


def apply(hold: Hold | None, event: LedgerEvent) -> Hold:
    """The state after ``event``: the one place that knows how each event changes a hold."""
    if isinstance(event, HoldPlaced):
        return Hold(
            id=event.originator_id,
            version=event.originator_version,
            account_id=event.account_id,
            amount=event.amount,
            currency=event.currency,
            reference=event.reference,
            status="placed",
            expires_at=event.expires_at,
            placed_at=event.timestamp,
            modified_at=event.timestamp,
        )
    return streams.evolve(hold, event, HoldPlaced, _changes)


def _changes(event: LedgerEvent, hold: Hold) -> dict[str, object]:
    status, captured = _ending(event, hold)
    return {"status": status, "captured": captured}


@singledispatch
def _ending(event: LedgerEvent, hold: Hold) -> tuple[HoldStatus, int]:
    """The status and captured amount ``event`` leaves ``hold`` with; each type registers."""
    streams.foreign(event, "hold")


@_ending.register
def _captured(event: HoldCaptured, hold: Hold) -> tuple[HoldStatus, int]:
    return "captured", event.amount


@_ending.register
def _released(event: HoldReleased, hold: Hold) -> tuple[HoldStatus, int]:
    return "released", 0


@_ending.register
def _expired(event: HoldExpired, hold: Hold) -> tuple[HoldStatus, int]:
    return "expired", 0


def fold(hold: Hold | None, events: Iterable[LedgerEvent]) -> Hold | None:
    """Fold ``events`` onto ``hold`` (None before the first)."""
    return streams.fold(apply, hold, events)


def load(hold: Hold | None, events: Iterable[LedgerEvent]) -> Hold | None:
    """:func:`fold` for loading a stream a client named as a hold: one that is another
    aggregate's stream (an account's id sent as a hold id) is no hold, not a broken one."""
    for event in events:
        if hold is None and not isinstance(event, HoldPlaced):
            raise HoldNotFound(event.originator_id)
        hold = apply(hold, event)
    return hold


#: Every event type of a hold stream: its first, then those :func:`_ending` registered.
HOLD_EVENTS: tuple[type[LedgerEvent], ...] = (
    HoldPlaced,
    *(t for t in _ending.registry if t is not object),
)
