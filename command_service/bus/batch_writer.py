"""Recording one batch of commands, each exactly once, whatever the store answers.

A batch first loses the commands the store already holds (:mod:`.exactly_once`),
then goes through the batch pipeline: the unit of work decides it and saves
it in one transaction (:mod:`.save`); a refused save is decided again on
fresh state (:mod:`.conflict_retry`); a save whose outcome is unknown is
settled by asking the store (:mod:`.unknown_outcome`). Every loop is
bounded, so one command can never wedge the writer.
"""

from __future__ import annotations

from command_service.bus.attempt import Attempt, Resolve, Writing, compose
from command_service.bus.conflict_retry import RetryConflicts
from command_service.bus.exactly_once import answer_recovered, join_repeats
from command_service.bus.save import SaveBatch
from command_service.bus.unit_of_work import StateCache
from command_service.bus.unknown_outcome import SettleUnknownOutcomes
from command_service.event_store import LedgerEventStore
from command_service.pending import Pending


class BatchWriter:
    """Decides, saves and answers batches; owned by the bus's writer thread."""

    def __init__(
        self,
        store: LedgerEventStore,
        cache: StateCache | None,
        resolve: Resolve,
        *,
        append_retries: int,
        snapshot_interval: int,
        settle_seconds: float,
    ) -> None:
        self._writing = Writing(store, cache, resolve)
        self._settle_seconds = settle_seconds
        self._attempt = compose(
            [
                RetryConflicts(self._writing, retries=append_retries),
                SettleUnknownOutcomes(self._writing, settle_seconds=settle_seconds),
            ],
            SaveBatch(self._writing, snapshot_interval=snapshot_interval),
        )

    def write(self, batch: list[Pending]) -> None:
        """Answer every command of ``batch`` (through ``resolve``)."""
        unique = join_repeats(batch)
        attempt: Attempt | None = Attempt(
            answer_recovered(self._writing, unique, self._settle_seconds)
        )
        while attempt is not None and attempt.batch:
            attempt = self._attempt(attempt)
