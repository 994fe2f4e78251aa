"""Command handlers, registered by command type.

A handler decides: given its command and the unit of work (which loads any
aggregate it asks for), it returns the events to record, or raises a
``DomainError``. Nothing else of the write path knows which commands exist,
so a new command is one handler and one :func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from command_service.bus.aggregates import AggregateType
from command_service.bus.unit_of_work import UnitOfWork
from command_service.commands import Command
from command_service.event_store import LedgerEventStore
from command_service.recorder import RecordedCommand
from shared_kernel.language.events import LedgerEvent

C = TypeVar("C", bound=Command[Any])

#: Builds a command's answer once the position of its last event is known.
Answer = Callable[[int], Any]


@dataclass(frozen=True, slots=True)
class Registration(Generic[C]):
    """How the bus handles one command type."""

    name: str
    #: The events ``command`` records, decided against the unit of work.
    decide: Callable[[C, UnitOfWork], list[LedgerEvent]]
    #: Right after the decision was applied: the command's answer, given its position.
    answer: Callable[[C, UnitOfWork], Answer]
    #: The answer of a command the store recorded before (it is never decided again).
    answer_recorded: Callable[[C, LedgerEventStore, RecordedCommand], Any]
    #: The streams a decision will read, to load in bulk before deciding a batch.
    reads: Callable[[C], Iterable[tuple[AggregateType, UUID]]]
    #: Whether its save writes the command id to ``ledger_commands`` (a second recording of
    #: it is then refused). Off for a command whose events already can be written only
    #: once, like a saga step on the next version of its transfer.
    recorded: bool = True


_HANDLERS: dict[type[Command[Any]], Registration[Any]] = {}


def register(command_type: type[C], registration: Registration[C]) -> None:
    if command_type in _HANDLERS:
        msg = f"{command_type.__name__} already has a handler"
        raise ValueError(msg)
    _HANDLERS[command_type] = registration


def registration_of(command: Command[Any]) -> Registration[Any]:
    try:
        return _HANDLERS[type(command)]
    except KeyError:
        msg = f"no handler is registered for {type(command).__name__}"
        raise LookupError(msg) from None


def command_name(command: Command[Any]) -> str:
    """A stable label for metrics, logs and spans, like ``deposit_money``."""
    return registration_of(command).name
