"""What every projection is: a name, a version, the events it reads, its tables, how it applies.

A projection is one module with:

- ``NAME``: its checkpoint row in ``projection_checkpoints`` and how operators call it;
- ``VERSION``: raised whenever what ``apply`` writes changes, so tables an older
  version built are rebuilt (or flagged stale) instead of mixed with new rows;
- ``HANDLES``: the event types it reads;
- ``DESCRIBES``: the kind of stream it describes on its own (``"account"``,
  ``"transfer"``, ...), so time travel can fold it from that stream alone; None
  for one that adds up many streams (totals, summaries);
- ``TABLES``: the tables it owns, created by its DDL in ``schema/sql``; a rebuild
  builds copies of exactly these beside the live ones and swaps them in together;
- ``REFERENCE``: per table, an SQL fold of ``ledger_events`` up to
  ``%(up_to)s`` giving the rows the table must hold, every column in table
  order. It is the independent check a rebuild is verified against before
  the swap, so it must share nothing with ``apply`` (different language,
  different route to the answer);
- ``apply``: called inside the transaction that also advances the checkpoint,
  with only the events of ``HANDLES`` the projection has not applied yet, in
  log order. It names its tables unqualified, so the same code writes the live
  tables or a rebuild's copies, whichever the connection's ``search_path``
  finds first. It raises :class:`CannotProject` for an event that does not fit
  the read model (the projector then dead-letters it); any database error it
  lets through is judged by the projector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection

from shared_kernel.event_log import LogEntry
from shared_kernel.language.events import LedgerEvent


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
    VERSION: int
    HANDLES: tuple[type[LedgerEvent], ...]
    DESCRIBES: str | None
    TABLES: tuple[str, ...]
    REFERENCE: Mapping[str, str]

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None: ...
