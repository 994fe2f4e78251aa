"""Deciding a batch of commands, in order, against one unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from command_service.bus.registry import Answer, registration_of
from command_service.bus.unit_of_work import UnitOfWork
from command_service.commands import Command
from command_service.domain.account import DomainError
from command_service.errors import StoreUnavailable
from shared_kernel.language.events import LedgerEvent


@dataclass
class Decision:
    """What one attempt decided: events to save in order, and each command's fate by index."""

    events: list[LedgerEvent] = field(default_factory=list)
    #: Index of the command behind each event, in the order of ``events``.
    accepted: list[int] = field(default_factory=list)
    #: Each accepted command's answer, waiting for its position.
    answers: dict[int, Answer] = field(default_factory=dict)
    #: The streams each accepted command wrote to.
    streams: dict[int, set[UUID]] = field(default_factory=dict)
    #: The streams each command read (accepted or refused).
    reads: dict[int, set[UUID]] = field(default_factory=dict)
    refusals: dict[int, Exception] = field(default_factory=dict)

    def accepted_commands(self) -> list[int]:
        """Indexes of the accepted commands, each once, in order."""
        return list(dict.fromkeys(self.accepted))


def decide_batch(commands: Sequence[Command[Any]], uow: UnitOfWork) -> Decision:
    """Decide ``commands`` in order; a refusal affects only its own command."""
    decision = Decision()
    for index, command in enumerate(commands):
        registration = registration_of(command)
        uow.start_decision()
        try:
            try:
                events = registration.decide(command, uow)
            except DomainError:
                if not uow.refresh_stale_reads():
                    raise
                events = registration.decide(command, uow)
        except (DomainError, StoreUnavailable) as refusal:
            decision.refusals[index] = refusal
            continue
        finally:
            decision.reads[index] = uow.read
        uow.record(events)
        decision.events.extend(events)
        decision.accepted.extend(index for _ in events)
        decision.answers[index] = registration.answer(command, uow)
        decision.streams[index] = {event.originator_id for event in events}
    return decision
