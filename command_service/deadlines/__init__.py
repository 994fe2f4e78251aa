"""Deadlines: commands scheduled by events, run once they are due, whatever restarts between.

A *schedule* says: an event of this type asks for this command on its stream
at this time (a placed hold asks for its expiry). Nothing is written beside
the events: the deadline runner (:mod:`.runner`) follows the event log, files
each deadline it finds in ``scheduled_commands`` in the same transaction as
its position, and dispatches each through the command bus once it is due.
So the log is the source of every deadline, a lost table row is found again
by reading the log, and a command run twice must be harmless: it is decided
on the stream as it is then (an expiry of a hold that ended records
nothing), and the stream's version key refuses a second recording.

Registering a schedule is all a new kind of deadline needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from command_service.commands import Command
from shared_kernel.language.events import LedgerEvent


@dataclass(frozen=True, slots=True)
class Schedule:
    """``event_type`` asks for ``command(stream_id)`` at ``due_at(event)``, filed as ``kind``."""

    kind: str
    event_type: type[LedgerEvent]
    due_at: Callable[[Any], datetime]
    command: Callable[[UUID], Command[Any]]


@dataclass(frozen=True, slots=True)
class Deadline:
    """One scheduled command: which kind, on which stream, from when."""

    kind: str
    stream_id: UUID
    due_at: datetime


_BY_KIND: dict[str, Schedule] = {}
_BY_EVENT: dict[type[LedgerEvent], Schedule] = {}


def register_schedule(schedule: Schedule) -> None:
    if schedule.kind in _BY_KIND or schedule.event_type in _BY_EVENT:
        msg = f"a schedule for {schedule.kind} or {schedule.event_type.__name__} exists"
        raise ValueError(msg)
    _BY_KIND[schedule.kind] = _BY_EVENT[schedule.event_type] = schedule


def scheduling_events() -> tuple[type[LedgerEvent], ...]:
    """The event types that schedule a command."""
    return tuple(_BY_EVENT)


def deadline_of(event: LedgerEvent) -> Deadline | None:
    """The deadline ``event`` schedules, if its type registered one."""
    schedule = _BY_EVENT.get(type(event))
    if schedule is None:
        return None
    return Deadline(schedule.kind, event.originator_id, schedule.due_at(event))


def command_for(kind: str, stream_id: UUID) -> Command[Any] | None:
    """The command a due deadline dispatches; None for a kind this code no longer knows."""
    schedule = _BY_KIND.get(kind)
    return schedule.command(stream_id) if schedule is not None else None
