"""A batch's row writes, queued by its projections and sent as ONE statement.

Every projection ends its ``apply`` with one or two writes whose answer it does
not read (an upsert of folded rows, an insert of statement lines, sums added).
Sent one by one, each is a round trip, and under load each round trip waits for
the server's process and then the projector's to get a core: a one-deposit batch
wrote four times and then advanced its checkpoints, five waits of its ten. The
projector's everyday batch queues them instead (:meth:`QueuedWrites.collecting`)
and sends them as the ``WITH`` items of the statement that advances the
checkpoints (:func:`projector.checkpoints.advance_checkpoints`): one wait.

PostgreSQL runs every data-modifying ``WITH`` item, referenced or not, in the
statement's one snapshot; the items write different tables (each projection owns
its own), so none needs to see another's rows. No projection reads a table after
writing it in the same ``apply``, so holding the writes back changes no read.

Outside :meth:`~QueuedWrites.collecting` (a rebuild's isolating path, a dead-letter
replay, the savepoints that isolate a refused batch) a write is sent at once, so
a failing write is still caught where it is made.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from psycopg import AsyncConnection

_queue: ContextVar[QueuedWrites | None] = ContextVar("queued_writes", default=None)


async def write_rows(conn: AsyncConnection[Any], statement: str, rows: str) -> None:
    """Run ``statement`` with its one parameter ``rows`` now, or queue it for the batch's end."""
    queued = _queue.get()
    if queued is None:
        await conn.execute(statement, (rows,))
    else:
        queued.add(statement, rows)


class QueuedWrites:
    """The writes queued while :meth:`collecting`, in the order they were made."""

    def __init__(self) -> None:
        self._writes: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._writes)

    def add(self, statement: str, rows: str) -> None:
        if statement.count("%s") != 1 or "%(" in statement:
            msg = "a queued write takes exactly one positional parameter, its rows"
            raise ValueError(msg)
        self._writes.append((statement, rows))

    @contextmanager
    def collecting(self) -> Iterator[QueuedWrites]:
        """Queue the :func:`write_rows` of the code run inside (this task and its children)."""
        token = _queue.set(self)
        try:
            yield self
        finally:
            _queue.reset(token)

    def statement(
        self, items: Mapping[str, str], final: str, params: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The queued writes, then ``items`` (name -> data-modifying SQL), as ``WITH`` items of
        ``final``; the parameters of all. Taking the writes empties the queue."""
        writes, self._writes = self._writes, []
        named = [(f"queued_write_{n}", sql, rows) for n, (sql, rows) in enumerate(writes)]
        ctes = [f"{name} AS ({sql.replace('%s', f'%({name})s')})" for name, sql, _ in named]
        ctes += [f"{name} AS ({sql})" for name, sql in items.items()]
        combined = f"WITH {', '.join(ctes)} {final}" if ctes else final
        return combined, {**params, **{name: rows for name, _, rows in named}}

    async def send(self, conn: AsyncConnection[Any]) -> None:
        """Send what is queued, alone (a batch that has no checkpoint to advance with them)."""
        if self._writes:
            statement, params = self.statement({}, "SELECT 1", {})
            await conn.execute(statement, params)
