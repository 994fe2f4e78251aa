"""The commands on holds and their handlers, registered on the bus.

A hold's id is the id of the command that placed it (as a transfer's is):
an idempotent request recovering from a dead attempt finds the stream that
attempt created. Capture, release and expiry name the hold; the account
they also write to comes from the hold, loaded by the unit of work.

``ExpireHold`` is what a deadline dispatches (:mod:`command_service.deadlines`):
it is decided on the hold as it is now, so one that ended (or an expiry run
a second time) records nothing, and the hold stream's version key refuses a
second end racing the first. That key is what makes it happen once, so its
command id is not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from command_service.aggregate_types import ACCOUNTS, HOLDS
from command_service.bus.aggregates import AggregateType
from command_service.bus.registry import Answer, Registration, register
from command_service.bus.unit_of_work import UnitOfWork
from command_service.commands import AccountCommand, Command
from command_service.deadlines import Schedule, register_schedule
from command_service.domain import hold as rules
from command_service.domain.account import Account
from command_service.domain.hold import Hold, HoldNotFound
from command_service.errors import AccountNotFound
from command_service.event_store import LedgerEventStore
from command_service.handlers import metadata_for
from command_service.recorder import RecordedCommand
from shared_kernel.language.events import HoldPlaced, LedgerEvent, utc_now


@dataclass(frozen=True, slots=True)
class HoldAccepted:
    """What a client learns of a placed hold."""

    hold_id: UUID
    position: int


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    """A hold after a command on it (its status, and what a capture took)."""

    hold_id: UUID
    account_id: UUID
    status: str
    version: int
    position: int
    captured: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceHold(AccountCommand[HoldAccepted]):
    """Reserve ``amount`` of ``account_id`` for ``expires_in_seconds``."""

    amount: int
    reference: str | None = None
    expires_in_seconds: int

    @property
    def hold_id(self) -> UUID:
        return self.command_id

    @property
    def stream_id(self) -> UUID:
        return self.hold_id


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldCommand(Command[HoldOutcome]):
    """A command that ends a hold; the account it frees comes from the hold."""

    hold_id: UUID

    @property
    def stream_id(self) -> UUID:
        return self.hold_id


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureHold(HoldCommand):
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseHold(HoldCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireHold(HoldCommand):
    pass


def _place(command: PlaceHold, uow: UnitOfWork) -> list[LedgerEvent]:
    account: Account | None = uow.get(ACCOUNTS, command.account_id)
    if account is None:
        raise AccountNotFound(command.account_id)
    return rules.place_hold(
        command.hold_id,
        account,
        amount=command.amount,
        reference=command.reference,
        expires_at=rules.expiry_after(utc_now(), command.expires_in_seconds),
        metadata=metadata_for(command),
    )


register(
    PlaceHold,
    Registration(
        name="place_hold",
        decide=_place,
        answer=lambda command, uow: lambda position: HoldAccepted(command.hold_id, position),
        answer_recorded=lambda command, store, record: HoldAccepted(
            command.hold_id, record.position
        ),
        reads=lambda command: ((ACCOUNTS, command.account_id),),
    ),
)


def _hold_and_account(command: HoldCommand, uow: UnitOfWork) -> tuple[Hold, Account]:
    hold: Hold | None = uow.get(HOLDS, command.hold_id)
    if not isinstance(hold, Hold):  # none, or a cached state of another aggregate's stream
        raise HoldNotFound(command.hold_id)
    account: Account | None = uow.get(ACCOUNTS, hold.account_id)
    if account is None:  # a hold is only ever placed on an existing account
        msg = f"hold {hold.id} names account {hold.account_id}, which is missing"
        raise ValueError(msg)
    return hold, account


def _capture(command: CaptureHold, uow: UnitOfWork) -> list[LedgerEvent]:
    hold, account = _hold_and_account(command, uow)
    return rules.capture_hold(hold, account, command.amount, metadata_for(command))


def _release(command: ReleaseHold, uow: UnitOfWork) -> list[LedgerEvent]:
    hold, account = _hold_and_account(command, uow)
    return rules.release_hold(hold, account, metadata_for(command))


def _expire(command: ExpireHold, uow: UnitOfWork) -> list[LedgerEvent]:
    hold: Hold | None = uow.get(HOLDS, command.hold_id)
    if isinstance(hold, Hold) and not hold.active:
        return []
    hold, account = _hold_and_account(command, uow)
    return rules.expire_hold(hold, account, utc_now(), metadata_for(command))


def _outcome(hold: Hold, position: int) -> HoldOutcome:
    return HoldOutcome(hold.id, hold.account_id, hold.status, hold.version, position, hold.captured)


def _after(command: HoldCommand, uow: UnitOfWork) -> Answer:
    hold: Hold = uow.working[command.hold_id]
    return lambda position: _outcome(hold, position)


def _recorded(
    command: HoldCommand, store: LedgerEventStore, record: RecordedCommand
) -> HoldOutcome:
    """The hold as of the recorded version, so a late answer reports what the command did."""
    events: Any = store.events.get(command.hold_id, lte=record.version)
    hold = rules.fold(None, events)
    if hold is None:
        raise HoldNotFound(command.hold_id)
    return _outcome(hold, record.position)


def _reads(command: HoldCommand) -> Iterable[tuple[AggregateType, UUID]]:
    return ((HOLDS, command.hold_id),)


def _ending(command_type: type[HoldCommand], name: str, decide: Any) -> None:
    registration: Registration[HoldCommand] = Registration(
        name=name,
        decide=decide,
        answer=_after,
        answer_recorded=_recorded,
        reads=_reads,
        recorded=command_type is not ExpireHold,
    )
    register(command_type, registration)


_ending(CaptureHold, "capture_hold", _capture)
_ending(ReleaseHold, "release_hold", _release)
_ending(ExpireHold, "expire_hold", _expire)


def _expiry(hold_id: UUID) -> ExpireHold:
    return ExpireHold(hold_id=hold_id, correlation_id=f"hold-expiry-{hold_id}")


def _expires_at(placed: HoldPlaced) -> datetime:
    return placed.expires_at


register_schedule(Schedule("expire-hold", HoldPlaced, _expires_at, _expiry))
