"""Reads of ``transfers``: one transfer, or an account's transfers newest first."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from projector.projections import account_balances, transfers
from query_service.account_pages import newest_first
from query_service.blocked_streams import BlockedStreams, ReadModelBlocked
from query_service.cursors import TransfersCursor
from query_service.errors import NotProjected
from query_service.one_view import OneView
from query_service.transfers.views import TransferPage, TransferView

BALANCES, TRANSFERS = account_balances.NAME, transfers.NAME
_TRANSFER_COLUMNS = ", ".join(TransferView.__struct_fields__)
_ONE_TRANSFER = OneView(
    f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE transfer_id = %s", TransferView
)
#: Newest first on either side of the transfer: two index scans, each stopped
#: after one page, merged. An OR over both columns would sort all of an
#: account's transfers for every page.
_ACCOUNT_TRANSFERS = (
    f"SELECT {_TRANSFER_COLUMNS}, requested_position FROM ("
    f" (SELECT {_TRANSFER_COLUMNS}, requested_position FROM transfers"
    "   WHERE from_account = %(account_id)s AND requested_position < %(before)s"
    "   ORDER BY requested_position DESC LIMIT %(fetch)s)"
    " UNION ALL"
    f" (SELECT {_TRANSFER_COLUMNS}, requested_position FROM transfers"
    "   WHERE to_account = %(account_id)s AND from_account <> %(account_id)s"
    "   AND requested_position < %(before)s"
    "   ORDER BY requested_position DESC LIMIT %(fetch)s)"
    ") AS either_side ORDER BY requested_position DESC LIMIT %(fetch)s"
)
#: Of the blocked transfers, those that involve the account or have no row to say.
_BLOCKED_TRANSFERS_OF = (
    "SELECT b.id FROM unnest(%s::uuid[]) AS b (id) LEFT JOIN transfers AS t ON t.transfer_id = b.id"
    " WHERE t.transfer_id IS NULL OR %s IN (t.from_account, t.to_account)"
)


class TransferNotFound(NotProjected):
    """No transfer with this id has been projected (yet)."""

    kind, title = "transfer", "No such transfer"

    def __init__(self, transfer_id: UUID) -> None:
        detail = f"no transfer {transfer_id} in the read models"
        super().__init__(detail, transfer_id=str(transfer_id))
        self.transfer_id = transfer_id


class TransferReads:
    def __init__(self, pool: AsyncConnectionPool, blocked: BlockedStreams) -> None:
        self._pool = pool
        self._blocked = blocked

    async def transfer(self, transfer_id: UUID) -> TransferView:
        self._blocked.check_stream((TRANSFERS,), transfer_id, f"transfer {transfer_id}")
        view = await _ONE_TRANSFER.read(self._pool, transfer_id)
        if view is None:
            raise TransferNotFound(transfer_id)
        return view

    async def of_account(
        self, account_id: UUID, *, limit: int, after: TransfersCursor | None
    ) -> TransferPage:
        """Transfers from or to the account, newest request first, older than the cursor's."""
        self._blocked.check_stream((BALANCES,), account_id, f"account {account_id}")
        async with self._pool.connection() as conn:
            await self._check_transfers_of(conn, account_id)
            items, next_cursor = await newest_first(
                conn, _ACCOUNT_TRANSFERS, account_id=account_id, limit=limit, after=after,
                cursor_type=TransfersCursor, view=TransferView, position="requested_position",
            )  # fmt: skip
        return TransferPage(items=items, next_cursor=next_cursor)

    async def _check_transfers_of(self, conn: AsyncConnection[Any], account_id: UUID) -> None:
        """Raise if a blocked transfer involves the account, or may (it has no row yet)."""
        blocked = self._blocked.of((TRANSFERS,))
        if not blocked:
            return
        cursor = await conn.execute(_BLOCKED_TRANSFERS_OF, ([b.stream_id for b in blocked],
                                                            account_id))  # fmt: skip
        touching = {row[0] for row in await cursor.fetchall()}
        found = [b for b in blocked if b.stream_id in touching]
        if found:
            raise ReadModelBlocked(found, f"the transfers of account {account_id}")
