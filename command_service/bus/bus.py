"""The command bus: every command of the ledger, whoever sends it, dispatched one way.

``await bus.dispatch(command)`` runs the command through the pipeline
behaviours (metrics, then tracing when it is on) into batching: the writer
thread decides it with its registered handler in a unit of work with the
other commands waiting, and saves the batch in one transaction. The answer
is the command's result type; a refusal is raised as a ``DomainError``,
which carries no HTTP status (the HTTP layer maps it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, Unpack, cast

from command_service.bus.batching import Batching, BatchingOptions
from command_service.bus.metered import metered
from command_service.bus.pipeline import Behaviour, compose
from command_service.bus.tracing import traced
from command_service.commands import Command
from command_service.event_store import LedgerEventStore
from shared_kernel import tracing

R = TypeVar("R")


def default_behaviours() -> list[Behaviour]:
    """Metrics around everything; a span per command only when tracing is on (no cost off)."""
    return [metered, traced] if tracing.enabled() else [metered]


class CommandBus:
    """Dispatches commands through behaviours into one writer thread that batches them."""

    def __init__(
        self,
        store: LedgerEventStore,
        *,
        behaviours: Sequence[Behaviour] | None = None,
        **options: Unpack[BatchingOptions],
    ) -> None:
        self._batching = Batching(store, **options)
        chosen = default_behaviours() if behaviours is None else behaviours
        self._dispatch = compose(chosen, self._batching.enqueue)

    async def dispatch(self, command: Command[R]) -> R:
        """Decide and record ``command``; its result, or the refusal raised."""
        return cast(R, await self._dispatch(cast(Command[Any], command)))

    def start(self) -> None:
        """Start the writer thread; commands dispatched before it wait in the queue."""
        self._batching.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new commands, answer every queued one, then end the thread (blocking)."""
        self._batching.stop(timeout)

    @property
    def backlog(self) -> int:
        """Commands waiting for the writer thread (approximate)."""
        return self._batching.backlog

    def check_progress(self, limit_seconds: float) -> None:
        """Raise ``WriterStalled`` when work waits and no batch ended for ``limit_seconds``."""
        self._batching.check_progress(limit_seconds)
