"""Adding what a batch changes to rows that sum over many accounts (per currency, per owner).

One statement: ``INSERT ... ON CONFLICT DO UPDATE`` adds each delta to its
row, or inserts the row. Projector processes applying other partitions add to
the same rows at the same time: a key another one is inserting is waited for,
then updated, never duplicated; an update that waited for another's row adds
to what that one committed. So the sums stay exact. The deltas go in key
order, so two batches mostly take their row locks in one order; a deadlock
PostgreSQL still finds aborts one batch, which the projector retries.

PostgreSQL checks a table's ``CHECK`` constraints on the row it proposes to
insert even when the key exists and it updates instead, and a delta may be
negative (withdrawals): so the proposed row carries the deltas raised to zero
and the update adds the real ones, read back from the batch by key. A key's
first delta is never negative (an account opens before it moves money).

The newest event a row holds gives its ``updated_at`` and ``last_position``:
a replay of a blocked stream applies older events after newer ones.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from psycopg import AsyncConnection

from projector.projections.base import RecordedEvent
from projector.projections.json_rows import rows_param, select_rows
from projector.projections.movements import is_movement, signed_amount
from projector.projections.queued_writes import write_rows
from shared_kernel.language.events import AccountClosed, AccountOpened

Column = tuple[str, str]
Key = TypeVar("Key", bound=Hashable)


@dataclass
class AccountSums:
    """What one batch adds to the accounts under one key: their balance, and how many are
    opened, open and closed. The attribute names are the tables' column names."""

    updated_at: datetime
    last_position: int
    balance: int = 0
    accounts: int = 0
    open_accounts: int = 0
    closed_accounts: int = 0


def account_sums(
    events: Sequence[RecordedEvent], key: Callable[[RecordedEvent], Key | None]
) -> dict[Key, AccountSums]:
    """What ``events`` add under each key; ``key`` says where an event counts (None: nowhere)."""
    sums: dict[Key, AccountSums] = {}
    for recorded in events:
        under = key(recorded)
        if under is None:
            continue
        event = recorded.event
        delta = sums.setdefault(under, AccountSums(event.timestamp, recorded.position))
        delta.updated_at, delta.last_position = event.timestamp, recorded.position
        if is_movement(event):
            delta.balance += signed_amount(event)
        elif isinstance(event, AccountOpened):
            delta.accounts += 1
            delta.open_accounts += 1
        elif isinstance(event, AccountClosed):
            delta.open_accounts -= 1
            delta.closed_accounts += 1
    return sums


@dataclass(frozen=True)
class SummedRows:
    """A table whose rows are keyed by ``keys`` and hold the running sums ``sums``."""

    table: str
    keys: Sequence[Column]
    sums: Sequence[Column]

    @property
    def statement(self) -> str:
        columns = [*self.keys, *self.sums, ("updated_at", "timestamptz"),
                   ("last_position", "bigint")]  # fmt: skip
        names = ", ".join(name for name, _ in columns)
        keys = ", ".join(name for name, _ in self.keys)
        proposed = ", ".join(
            [keys, *(f"GREATEST({name}, 0)" for name, _ in self.sums), "updated_at",
             "last_position"]
        )  # fmt: skip
        matched = " AND ".join(f"d.{name} = EXCLUDED.{name}" for name, _ in self.keys)
        # One lookup of the key's delta for all the sums, not one per sum.
        sums = ", ".join(name for name, _ in self.sums)
        totals = ", ".join(f"t.{name} + d.{name}" for name, _ in self.sums)
        added = f"({sums}) = (SELECT {totals} FROM delta AS d WHERE {matched})"
        return (
            f"WITH delta ({names}) AS ({select_rows(*columns)})"
            f" INSERT INTO {self.table} AS t ({names}) SELECT {proposed} FROM delta"
            f" ORDER BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {added},"
            " updated_at = CASE WHEN EXCLUDED.last_position > t.last_position"
            " THEN EXCLUDED.updated_at ELSE t.updated_at END,"
            " last_position = GREATEST(t.last_position, EXCLUDED.last_position)"
        )

    async def apply(self, conn: AsyncConnection[Any], rows: Sequence[Sequence[Any]]) -> None:
        """Add ``rows`` (keys, sums, updated_at, last_position: the table's column order)."""
        if rows:
            await write_rows(conn, self.statement, rows_param(rows))

    async def add(
        self, conn: AsyncConnection[Any], sums: Mapping[tuple[Any, ...], AccountSums]
    ) -> None:
        """Add ``sums``, each under its key's values (in the order of ``keys``)."""
        rows = [
            (*key, *(getattr(delta, name) for name, _ in self.sums), delta.updated_at,
             delta.last_position)
            for key, delta in sums.items()
        ]  # fmt: skip
        await self.apply(conn, rows)
