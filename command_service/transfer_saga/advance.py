"""The saga's one command, ``AdvanceTransfer``: take a transfer's next step, on the bus.

A step's events (the leg on the account, the transfer's next event, and on
completion the source's settlement) come from the pure domain
(:func:`~command_service.domain.transfer.next_step`) and are saved together.
The transfer event carries the next version of the transfer stream, so a step
repeated by anyone (this saga after a crash, a second saga) is refused by the
store's (stream, version) key: the bus then decides the command again on the
transfer as it is now, which finds the step done. That key is what makes a
step happen once, so the command id is not recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from command_service.aggregate_types import ACCOUNTS, TRANSFERS
from command_service.bus.aggregates import AggregateType
from command_service.bus.registry import Answer, Registration, register
from command_service.bus.unit_of_work import UnitOfWork
from command_service.commands import Command
from command_service.domain.account import DomainError
from command_service.domain.transfer import Transfer, next_step
from command_service.event_store import LedgerEventStore
from command_service.recorder import RecordedCommand
from command_service.transfer_saga import metrics
from shared_kernel.language.events import LedgerEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepTaken:
    """The transfer after the command; ``stepped`` when this command's events moved it."""

    transfer: Transfer
    stepped: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvanceTransfer(Command[StepTaken]):
    """Take the next step of ``transfer_id`` (from ``from_account`` to ``to_account``),
    seen by the saga at ``seen_version``."""

    transfer_id: UUID
    from_account: UUID
    to_account: UUID
    seen_version: int

    @property
    def stream_id(self) -> UUID:
        return self.transfer_id

    @classmethod
    def of(cls, transfer: Transfer) -> AdvanceTransfer:
        return cls(
            from_account=transfer.from_account,
            to_account=transfer.to_account,
            transfer_id=transfer.id,
            seen_version=transfer.version,
            correlation_id=transfer.correlation_id,
        )


def _decide(command: AdvanceTransfer, uow: UnitOfWork) -> list[LedgerEvent]:
    transfer: Transfer | None = uow.get(TRANSFERS, command.transfer_id)
    if transfer is None or transfer.terminal:
        return []
    if transfer.version > command.seen_version:
        metrics.STEPS_ALREADY_DONE.inc()  # someone else took the step the saga saw
    source = uow.get(ACCOUNTS, transfer.from_account)
    # Read in both steps (it is loaded with the source anyway), so the credit step of the
    # same pass finds it among the states the debit step left (see .steps).
    target = uow.get(ACCOUNTS, transfer.to_account)
    try:
        return next_step(transfer, source, target if transfer.status == "debited" else None)
    except (DomainError, ValueError):
        # A state the rules say cannot happen (a debited transfer whose source lost
        # track of it): leave the transfer for an operator, never guess.
        log.exception(
            "cannot decide the next step of a transfer",
            extra={"transfer_id": str(transfer.id), "status": transfer.status},
        )
        return []


def _answer(command: AdvanceTransfer, uow: UnitOfWork) -> Answer:
    after = StepTaken(uow.working[command.transfer_id], command.transfer_id in uow.changed)
    return lambda position: after


def _recorded(
    command: AdvanceTransfer, store: LedgerEventStore, record: RecordedCommand
) -> StepTaken:
    transfer = store.get_transfer(command.transfer_id)
    assert transfer is not None
    return StepTaken(transfer, stepped=False)


def _reads(command: AdvanceTransfer) -> Iterable[tuple[AggregateType, UUID]]:
    return (
        (TRANSFERS, command.transfer_id),
        (ACCOUNTS, command.from_account),
        (ACCOUNTS, command.to_account),
    )


register(
    AdvanceTransfer,
    Registration(
        name="advance_transfer",
        decide=_decide,
        answer=_answer,
        answer_recorded=_recorded,
        reads=_reads,
        recorded=False,
    ),
)
