"""Recording one batch of commands, each exactly once, whatever the store answers.

A batch first loses the commands the store already holds (:mod:`.exactly_once`),
then goes through the batch pipeline: the unit of work decides it and saves
it in one transaction (:mod:`.save`); a refused save is decided again on
fresh state (:mod:`.conflict_retry`); a save whose outcome is unknown is
settled by asking the store (:mod:`.unknown_outcome`). Every loop is
bounded, so one command can never wedge the writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict
from uuid import UUID

from eventsourcing.application import LRUCache

from command_service import registrations  # noqa: F401  (every handler registered)
from command_service.bus.attempt import Attempt, Behaviour, Resolve, Writing, compose
from command_service.bus.conflict_retry import RetryConflicts
from command_service.bus.exactly_once import answer_recovered, join_repeats
from command_service.bus.save import SaveBatch
from command_service.bus.unit_of_work import StateCache
from command_service.bus.unknown_outcome import SettleUnknownOutcomes
from command_service.event_store import LedgerEventStore
from command_service.pending import Pending


class WriterOptions(TypedDict, total=False):
    """The writer's tuning (each has a default in :class:`BatchWriter`)."""

    append_retries: int
    snapshot_interval: int
    cache_size: int
    settle_seconds: float
    around_save: Sequence[Behaviour]


class BatchWriter:
    """Decides, saves and answers batches, in one thread at a time.

    ``around_save``: more behaviours, innermost, right around the save.
    """

    def __init__(
        self,
        store: LedgerEventStore,
        resolve: Resolve,
        *,
        append_retries: int = 5,
        snapshot_interval: int = 100,
        cache_size: int = 10_000,
        settle_seconds: float = 5.0,
        around_save: Sequence[Behaviour] = (),
    ) -> None:
        cache: StateCache | None = LRUCache(cache_size) if cache_size else None
        self._writing = Writing(store, cache, resolve)
        self._settle_seconds = settle_seconds
        self._attempt = compose(
            [
                RetryConflicts(self._writing, retries=append_retries),
                SettleUnknownOutcomes(self._writing, settle_seconds=settle_seconds),
                *around_save,
            ],
            SaveBatch(self._writing, snapshot_interval=snapshot_interval),
        )

    def remember(self, states: Mapping[UUID, Any]) -> None:
        """Cache ``states``, just loaded fresh by the caller (nothing without a cache)."""
        cache = self._writing.cache
        if cache is not None:
            for stream_id, state in states.items():
                cache.put(stream_id, state)

    def write(self, batch: list[Pending]) -> None:
        """Answer every command of ``batch`` (through ``resolve``)."""
        unique = join_repeats(batch)
        attempt: Attempt | None = Attempt(
            answer_recovered(self._writing, unique, self._settle_seconds)
        )
        while attempt is not None and attempt.batch:
            attempt = self._attempt(attempt)
