"""The bus's batch pipeline run in the caller's thread, for a caller that is one loop itself.

The transfer saga advances many transfers from one thread: it needs no queue
and no writer thread, only the rest of the bus (registered handlers, the unit
of work, one transaction per batch, conflict retry, unknown-outcome settling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack
from uuid import UUID

from command_service.bus.batch_writer import BatchWriter, WriterOptions
from command_service.commands import Command
from command_service.event_store import LedgerEventStore
from command_service.pending import Outcome, Pending


class InlineBus:
    """Decides and records commands together, in the calling thread; not thread-safe."""

    def __init__(self, store: LedgerEventStore, **options: Unpack[WriterOptions]) -> None:
        self._outcomes: dict[int, Outcome] = {}
        self._store, self._options = store, options
        self.start_over({})

    def start_over(self, known: Mapping[UUID, Any]) -> None:
        """Forget the states earlier batches left cached; hold ``known`` instead.

        A new writer with an empty cache: the library's ``LRUCache.clear()`` resets
        its order but keeps every entry.
        """
        self._writer = BatchWriter(self._store, self._resolve, **self._options)
        self._writer.remember(known)

    def dispatch_together(self, commands: Sequence[Command[Any]]) -> list[Outcome]:
        """Each command's answer (or refusal, as the exception), in order: one batch."""
        batch = [Pending(command) for command in commands]
        self._outcomes = {}
        self._writer.write(batch)
        return [self._outcomes[id(pending)] for pending in batch]

    def _resolve(self, pending: Pending, outcome: Outcome) -> None:
        self._outcomes[id(pending)] = outcome
        for repeat in pending.repeats:
            self._resolve(repeat, outcome)
