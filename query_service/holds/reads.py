"""Reads of ``holds``: one hold, or an account's holds newest first."""

from __future__ import annotations

from uuid import UUID

from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from projector.projections import account_balances, holds
from query_service.accounts.reads import account_exists
from query_service.blocked_streams import BlockedStreams
from query_service.cursors import MAX_BIGINT, HoldsCursor, encode_cursor
from query_service.errors import NotProjected
from query_service.holds.views import HoldPage, HoldView

BALANCES, HOLDS = account_balances.NAME, holds.NAME
_COLUMNS = ", ".join(HoldView.__struct_fields__)
_ACCOUNT_HOLDS = (
    f"SELECT {_COLUMNS}, placed_position FROM holds"
    " WHERE account_id = %(account_id)s AND placed_position < %(before)s"
    " ORDER BY placed_position DESC LIMIT %(fetch)s"
)


class HoldNotFound(NotProjected):
    """No hold with this id has been projected (yet)."""

    kind, title = "hold", "No such hold"

    def __init__(self, hold_id: UUID) -> None:
        super().__init__(f"no hold {hold_id} in the read models", hold_id=str(hold_id))


class HoldReads:
    def __init__(self, pool: AsyncConnectionPool, blocked: BlockedStreams) -> None:
        self._pool = pool
        self._blocked = blocked

    async def hold(self, hold_id: UUID) -> HoldView:
        self._blocked.check_stream((HOLDS,), hold_id, f"hold {hold_id}")
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(HoldView))
            await cursor.execute(f"SELECT {_COLUMNS} FROM holds WHERE hold_id = %s", (hold_id,))
            view = await cursor.fetchone()
        if view is None:
            raise HoldNotFound(hold_id)
        return view

    async def of_account(
        self, account_id: UUID, *, limit: int, after: HoldsCursor | None
    ) -> HoldPage:
        """The account's holds, newest first, placed before the cursor's."""
        self._blocked.check_stream((BALANCES,), account_id, f"account {account_id}")
        before = after.before_position if after is not None else MAX_BIGINT
        params = {"account_id": account_id, "before": before, "fetch": limit + 1}
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(_ACCOUNT_HOLDS, params)
            rows = await cursor.fetchall()
            if not rows:
                await account_exists(conn, account_id)
        positions = [row.pop("placed_position") for row in rows]
        items = [HoldView(**row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(HoldsCursor(account_id, positions[limit - 1]))
        return HoldPage(items=items, next_cursor=next_cursor)
