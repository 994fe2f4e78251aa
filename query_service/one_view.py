"""One read-model row by its key, as the view it is served as (None: not projected yet).

The read by key is the hottest read of the service (a client polling its own
write). Its row maker is built once per statement, not per execution:
psycopg's ``class_row`` decodes the result's column names again for every
row set, although one statement's columns never change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

from psycopg import AsyncCursor
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool

View = TypeVar("View")


class OneView(Generic[View]):
    """``query`` (its one parameter the key) and the ``view`` its row is served as."""

    def __init__(self, query: str, view: type[View]) -> None:
        self._query = query
        self._view = view
        self._maker: RowMaker[View] | None = None

    async def read(self, pool: AsyncConnectionPool[Any], key: UUID) -> View | None:
        """The row with ``key``, as a view (None when there is none)."""
        async with pool.connection() as conn:
            cursor = conn.cursor(row_factory=self._row_maker)
            await cursor.execute(self._query, (key,))
            row: View | None = await cursor.fetchone()
        return row

    def _row_maker(self, cursor: AsyncCursor[Any]) -> RowMaker[View]:
        if self._maker is None:
            names = [column.name for column in cursor.description or ()]
            view = self._view

            def make(values: Sequence[Any]) -> View:
                return view(**dict(zip(names, values, strict=True)))

            self._maker = make
        return self._maker
