"""One attempt at a batch, and the pipeline of steps around it.

The writer takes a batch and runs it through the batch pipeline: behaviours
(:mod:`.conflict_retry`, :mod:`.unknown_outcome`) wrapped around the unit of
work's decide-and-save (:mod:`.save`). A pass answers what it can and
returns the attempt to make next (the commands to decide again, with any state
it already read), or None; every behaviour bounds its own retries, so the
loop in :mod:`.batch_writer` always ends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from command_service.bus.decision import Decision
from command_service.bus.unit_of_work import StateCache, UnitOfWork
from command_service.event_store import LedgerEventStore
from command_service.pending import Outcome, Pending

Resolve = Callable[[Pending, Outcome], None]


@dataclass(frozen=True, slots=True)
class Attempt:
    """Commands to decide (again), and states already loaded fresh for them."""

    batch: list[Pending]
    preloaded: dict[UUID, Any] | None = None


@dataclass(frozen=True, slots=True)
class Writing:
    """What every step of the batch pipeline works with."""

    store: LedgerEventStore
    cache: StateCache | None
    resolve: Resolve

    def evict(self, stream_ids: Iterable[UUID]) -> None:
        """Forget cached states that may be wrong (after a refused or failed save)."""
        if self.cache is None:
            return
        for stream_id in list(stream_ids):
            try:
                self.cache.get(stream_id, evict=True)
            except KeyError:
                continue


Step = Callable[[Attempt], Attempt | None]
Behaviour = Callable[[Attempt, Step], Attempt | None]


def compose(behaviours: Iterable[Behaviour], last: Step) -> Step:
    """``last`` inside ``behaviours``, the first one outermost."""
    step = last
    for behaviour in reversed(list(behaviours)):
        step = functools.partial(_around, behaviour, step)
    return step


def _around(behaviour: Behaviour, inner: Step, attempt: Attempt) -> Attempt | None:
    return behaviour(attempt, inner)


class SaveRefused(Exception):
    """The store refused the batch's save (``IntegrityError``); nothing of it was written."""

    def __init__(
        self,
        decision: Decision,
        uow: UnitOfWork,
        *,
        stream: UUID | None,
        recorded_command: bool,
    ) -> None:
        super().__init__(stream, recorded_command)
        self.decision = decision
        self.uow = uow
        #: The stream whose version key was taken, when the error names it.
        self.stream = stream
        #: True when a command of the batch was recorded before.
        self.recorded_command = recorded_command


class SaveUnknown(Exception):
    """The save failed for the store's reasons: whether it committed is unknown."""

    def __init__(self, decision: Decision, uow: UnitOfWork, error: Exception) -> None:
        super().__init__(str(error))
        self.decision = decision
        self.uow = uow
        self.error = error
