"""An account's listings (statement, transfers, holds): newest first, a keyset page at a time.

Each page continues strictly below the key of the last row served (its log
position; a statement line's version), so rows recorded meanwhile neither
repeat nor vanish and page N costs what page 1 does. A cursor is bound to its
account: one issued for another account's listing is refused before any read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from query_service.cursors import (
    MAX_BIGINT,
    HoldsCursor,
    InvalidCursor,
    StatementCursor,
    TransfersCursor,
    encode_cursor,
)
from query_service.errors import AccountNotFound
from query_service.query_bus import Query

Page_co = TypeVar("Page_co", covariant=True)
AccountCursor = TypeVar("AccountCursor", StatementCursor, TransfersCursor, HoldsCursor)
PositionCursor = TypeVar("PositionCursor", TransfersCursor, HoldsCursor)
View = TypeVar("View", bound=msgspec.Struct)


@dataclass(frozen=True)
class AccountListing(Query[Page_co], Generic[Page_co, AccountCursor]):
    """A page of one account's ``LISTING``, continuing after ``after`` (None: the first page)."""

    LISTING: ClassVar[str]
    account_id: UUID
    limit: int
    after: AccountCursor | None

    def check(self) -> None:
        if self.after is not None and self.after.account_id != self.account_id:
            raise InvalidCursor(f"the cursor continues another account's {self.LISTING}")


async def account_exists(conn: AsyncConnection[Any], account_id: UUID) -> None:
    """An empty page is the end of a real listing or an unknown account; only the second 404s."""
    query = "SELECT 1 FROM account_balances WHERE account_id = %s"
    found = await conn.execute(query, (account_id,))
    if await found.fetchone() is None:
        raise AccountNotFound(account_id)


async def newest_first(
    conn: AsyncConnection[Any],
    query: str,
    *,
    account_id: UUID,
    limit: int,
    after: PositionCursor | None,
    cursor_type: type[PositionCursor],
    view: type[View],
    position: str,
) -> tuple[list[View], str | None]:
    """One page of ``view`` rows and the cursor of the next (None at the end).

    ``query`` takes ``%(account_id)s``, ``%(before)s`` and ``%(fetch)s`` and
    selects the view's columns and ``position``, the log position it pages by.
    """
    # Without a cursor, start above any position a bigint can hold: one query
    # shape (and one plan) for the first page and the rest.
    before = after.before_position if after is not None else MAX_BIGINT
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(query, {"account_id": account_id, "before": before, "fetch": limit + 1})
    rows = await cursor.fetchall()
    if not rows:
        await account_exists(conn, account_id)
    positions = [row.pop(position) for row in rows]
    items = [view(**row) for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    return items, encode_cursor(cursor_type(account_id, positions[limit - 1]))
