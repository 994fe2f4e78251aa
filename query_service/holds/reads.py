"""Reads of ``holds``: one hold, or an account's holds newest first."""

from __future__ import annotations

from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from projector.projections import account_balances, holds
from query_service.account_pages import newest_first
from query_service.blocked_streams import BlockedStreams
from query_service.cursors import HoldsCursor
from query_service.errors import NotProjected
from query_service.holds.views import HoldPage, HoldView
from query_service.one_view import OneView

BALANCES, HOLDS = account_balances.NAME, holds.NAME
_COLUMNS = ", ".join(HoldView.__struct_fields__)
_ONE_HOLD = OneView(f"SELECT {_COLUMNS} FROM holds WHERE hold_id = %s", HoldView)
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
        view = await _ONE_HOLD.read(self._pool, hold_id)
        if view is None:
            raise HoldNotFound(hold_id)
        return view

    async def of_account(
        self, account_id: UUID, *, limit: int, after: HoldsCursor | None
    ) -> HoldPage:
        """The account's holds, newest first, placed before the cursor's."""
        self._blocked.check_stream((BALANCES,), account_id, f"account {account_id}")
        async with self._pool.connection() as conn:
            items, next_cursor = await newest_first(
                conn, _ACCOUNT_HOLDS, account_id=account_id, limit=limit, after=after,
                cursor_type=HoldsCursor, view=HoldView, position="placed_position",
            )  # fmt: skip
        return HoldPage(items=items, next_cursor=next_cursor)
