"""What every projection is: a name, the event types it reads, and how it applies a batch.

A projection is one module with ``NAME``, ``HANDLES`` and ``apply``. The
projector calls ``apply`` inside the transaction that also advances the
checkpoint, with only the events of ``HANDLES`` that the projection has not
applied yet, in log order. ``apply`` raises :class:`CannotProject` for an
event that does not fit the read model (the projector then dead-letters it);
any database error it lets through is judged by the projector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection

from shared_kernel.event_log import LogEntry
from shared_kernel.events import LedgerEvent


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A decoded event at its position in the log, with the entry it came from."""

    position: int
    event: LedgerEvent
    entry: LogEntry


class CannotProject(Exception):
    """The event contradicts the read model (unknown account, version gap, overdraft)."""


class Projection(Protocol):
    NAME: str
    HANDLES: tuple[type[LedgerEvent], ...]

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None: ...
