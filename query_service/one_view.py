"""One read-model row by its key, as the view it is served as (None: not projected yet)."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from psycopg import sql
from psycopg.abc import Query
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

View = TypeVar("View")


async def one_view(
    pool: AsyncConnectionPool[Any], query: Query | sql.Composable, key: UUID, view: type[View]
) -> View | None:
    """The row ``query`` selects with ``key`` as its one parameter, as a ``view``."""
    async with pool.connection() as conn:
        cursor = conn.cursor(row_factory=class_row(view))
        await cursor.execute(query, (key,))
        row: View | None = await cursor.fetchone()
    return row
