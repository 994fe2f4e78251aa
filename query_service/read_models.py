"""Queries over the read models the projector keeps: balances, statements, transfers, totals.

The only tables read here are ``account_balances``, ``account_transactions``,
``transfers`` and ``currency_totals`` (see ``schema/sql/003_read_models.sql``
and ``006_transfer_read_models.sql``); the event store is the projector's
business (the one exception, time travel with ``as_of``, is
:mod:`query_service.time_travel`'s). Pages are keyset pages: each continues
strictly after the last row served, on a unique, indexed key, so concurrent
inserts never repeat or skip a row and the cost of page N does not grow with N.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from query_service.blocked_streams import BlockedStream, BlockedStreams, ReadModelBlocked
from query_service.cursors import (
    MAX_BIGINT,
    AccountsCursor,
    InvalidCursor,
    OwnersCursor,
    StatementCursor,
    TransfersCursor,
    encode_cursor,
)
from query_service.owner_summaries import owner_page, owner_summary
from query_service.projection_position import BALANCES, OWNERS, STATEMENTS, TOTALS, TRANSFERS
from query_service.views import (
    AccountPage,
    AccountStatus,
    AccountView,
    CurrencyTotal,
    OwnerPage,
    OwnerView,
    Totals,
    TransactionPage,
    TransactionView,
    TransferPage,
    TransferView,
)

_ACCOUNT_COLUMNS = sql.SQL(
    "account_id, owner, currency, balance, status, version, opened_at, updated_at"
)
_TRANSFER_COLUMNS = (
    "transfer_id, from_account, to_account, amount, currency, status, reason, requested_at,"
    " debited_at, finished_at, version"
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
_TOTALS = (
    "SELECT currency, balance, accounts, open_accounts, closed_accounts FROM currency_totals"
    " ORDER BY currency"
)


class AccountNotFound(LookupError):
    """No account with this id has been projected (yet)."""

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"no account {account_id}")
        self.account_id = account_id


class TransferNotFound(LookupError):
    """No transfer with this id has been projected (yet)."""

    def __init__(self, transfer_id: UUID) -> None:
        super().__init__(f"no transfer {transfer_id}")
        self.transfer_id = transfer_id


@dataclass(frozen=True, kw_only=True)
class AccountFilter:
    """Which accounts ``GET /accounts`` lists; ``None`` means any."""

    owner: str | None = None
    status: AccountStatus | None = None
    min_balance: int | None = None


class ReadModels:
    """Read-only access to the ledger's read models through a connection pool.

    Each read first awaits its freshness gate (see :meth:`after`), then checks
    that nothing it shows is a stream the projector holds back (``blocked``),
    raising ``ReadModelBlocked`` (a 503) otherwise.
    """

    def __init__(self, pool: AsyncConnectionPool, blocked: BlockedStreams) -> None:
        self._pool = pool
        self._blocked = blocked
        self._gate: Callable[[], Awaitable[None]] | None = None

    def after(self, gate: Callable[[], Awaitable[None]]) -> ReadModels:
        """These read models, each read waiting for ``gate`` first.

        The wait for ``min_position`` is a gate rather than part of the litestar
        dependency, so it starts only once the handler runs, after every other
        parameter validated: a bad parameter is an immediate 422, never a wait.
        """
        gated = copy.copy(self)
        gated._gate = gate
        return gated

    async def _fresh(self) -> None:
        if self._gate is not None:
            await self._gate()

    async def account(self, account_id: UUID) -> AccountView:
        await self._fresh()
        self._blocked.check_stream((BALANCES,), account_id, f"account {account_id}")
        query = sql.SQL("SELECT {} FROM account_balances WHERE account_id = %s").format(
            _ACCOUNT_COLUMNS
        )
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(AccountView))
            await cursor.execute(query, (account_id,))
            view = await cursor.fetchone()
        if view is None:
            raise AccountNotFound(account_id)
        return view

    async def statement(
        self, account_id: UUID, *, limit: int, after: StatementCursor | None
    ) -> TransactionPage:
        """The account's lines newest first, older than the cursor's version."""
        if after is not None and after.account_id != account_id:
            raise InvalidCursor("the cursor continues another account's statement")
        await self._fresh()
        # Without a cursor, start above any version a bigint can hold: one
        # query shape (and one plan) for the first page and the rest.
        self._blocked.check_stream(
            (STATEMENTS, BALANCES), account_id, f"the statement of account {account_id}"
        )
        before_version = after.before_version if after is not None else MAX_BIGINT
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(TransactionView))
            await cursor.execute(
                "SELECT position, version, kind, amount, currency, balance_after, reference,"
                " recorded_at, counterparty, transfer_id FROM account_transactions"
                " WHERE account_id = %(account_id)s"
                " AND version < %(before)s"
                " ORDER BY version DESC LIMIT %(fetch)s",
                {"account_id": account_id, "before": before_version, "fetch": limit + 1},
            )
            lines = await cursor.fetchall()
            if not lines:
                await _account_exists(conn, account_id)
        next_cursor = None
        if len(lines) > limit:
            lines = lines[:limit]
            next_cursor = encode_cursor(StatementCursor(account_id, lines[-1].version))
        return TransactionPage(items=lines, next_cursor=next_cursor)

    async def accounts(
        self, where: AccountFilter, *, limit: int, after: AccountsCursor | None
    ) -> AccountPage:
        """Accounts matching ``where`` in account id order, after the cursor's id."""
        if after is not None and (after.owner, after.status, after.min_balance) != (
            where.owner,
            where.status,
            where.min_balance,
        ):
            raise InvalidCursor("the cursor continues a query with other filters")
        await self._fresh()
        # Where a blocked account falls in a filtered listing is unknown (its
        # status, balance, even its owner may be among what is held back).
        self._blocked.check_none((BALANCES,), "the account listing")
        # Only the filters given become SQL, so each combination gets a plan
        # that can use its index instead of one generic "x IS NULL OR" plan.
        conditions: list[sql.Composable] = []
        params: dict[str, object] = {"fetch": limit + 1}
        if where.owner is not None:
            conditions.append(sql.SQL("owner = %(owner)s"))
            params["owner"] = where.owner
        if where.status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
            params["status"] = where.status
        if where.min_balance is not None:
            conditions.append(sql.SQL("balance >= %(min_balance)s"))
            params["min_balance"] = where.min_balance
        if after is not None:
            conditions.append(sql.SQL("account_id > %(after)s"))
            params["after"] = after.after_account_id
        where_clause = (
            sql.SQL("WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
        )
        query = sql.SQL("SELECT {} FROM account_balances {} ORDER BY account_id LIMIT %(fetch)s")
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(AccountView))
            await cursor.execute(query.format(_ACCOUNT_COLUMNS, where_clause), params)
            rows = await cursor.fetchall()
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(
                AccountsCursor(rows[-1].account_id, where.owner, where.status, where.min_balance)
            )
        return AccountPage(items=rows, next_cursor=next_cursor)

    async def transfer(self, transfer_id: UUID) -> TransferView:
        await self._fresh()
        self._blocked.check_stream((TRANSFERS,), transfer_id, f"transfer {transfer_id}")
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(TransferView))
            await cursor.execute(
                f"SELECT {_TRANSFER_COLUMNS} FROM transfers WHERE transfer_id = %s", (transfer_id,)
            )
            view = await cursor.fetchone()
        if view is None:
            raise TransferNotFound(transfer_id)
        return view

    async def account_transfers(
        self, account_id: UUID, *, limit: int, after: TransfersCursor | None
    ) -> TransferPage:
        """Transfers from or to the account, newest request first, older than the cursor's."""
        if after is not None and after.account_id != account_id:
            raise InvalidCursor("the cursor continues another account's transfers")
        await self._fresh()
        self._blocked.check_stream((BALANCES,), account_id, f"account {account_id}")
        before = after.before_position if after is not None else MAX_BIGINT
        params = {"account_id": account_id, "before": before, "fetch": limit + 1}
        async with self._pool.connection() as conn:
            await self._check_transfers_of(conn, account_id)
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(_ACCOUNT_TRANSFERS, params)
            rows = await cursor.fetchall()
            if not rows:
                await _account_exists(conn, account_id)
        positions = [row.pop("requested_position") for row in rows]
        items = [TransferView(**row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(TransfersCursor(account_id, positions[limit - 1]))
        return TransferPage(items=items, next_cursor=next_cursor)

    async def _check_transfers_of(self, conn: AsyncConnection[Any], account_id: UUID) -> None:
        """Raise if a blocked transfer involves the account, or may (it has no row yet)."""
        blocked = self._blocked.of((TRANSFERS,))
        if not blocked:
            return
        cursor = await conn.execute(_BLOCKED_TRANSFERS_OF, ([b.stream_id for b in blocked],
                                                            account_id))  # fmt: skip
        touching = {row[0] for row in await cursor.fetchall()}
        self._blocked_among(blocked, touching, f"the transfers of account {account_id}")

    @staticmethod
    def _blocked_among(blocked: list[BlockedStream], ids: set[UUID], what: str) -> None:
        found = [b for b in blocked if b.stream_id in ids]
        if found:
            raise ReadModelBlocked(found, what)

    async def owner(self, owner: str) -> OwnerView:
        """One owner's accounts and balances; :class:`OwnerNotFound` for an unknown owner."""
        await self._fresh()
        # An owner's accounts are found by owner; a blocked account's owner may
        # be what could not be stored, so any block could be one of theirs.
        self._blocked.check_none((OWNERS,), f"the summary of owner {owner!r}")
        async with self._pool.connection() as conn:
            return await owner_summary(conn, owner)

    async def owners(self, *, limit: int, after: OwnersCursor | None) -> OwnerPage:
        """Owners in owner order, after the cursor's."""
        await self._fresh()
        self._blocked.check_none((OWNERS,), "the owner listing")
        async with self._pool.connection() as conn:
            return await owner_page(conn, limit=limit, after=after)

    async def totals(self) -> Totals:
        await self._fresh()
        self._blocked.check_none((TOTALS,), "the totals")
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_TOTALS)
            rows = await cursor.fetchall()
        return Totals(
            currencies=[
                CurrencyTotal(
                    currency=currency,
                    balance=int(balance),  # numeric: the sum may outgrow a bigint
                    accounts=accounts,
                    open_accounts=open_accounts,
                    closed_accounts=closed_accounts,
                )
                for currency, balance, accounts, open_accounts, closed_accounts in rows
            ]
        )


async def _account_exists(conn: AsyncConnection[Any], account_id: UUID) -> None:
    """An empty page is the end of a real listing or an unknown account; only the second 404s."""
    query = "SELECT 1 FROM account_balances WHERE account_id = %s"
    found = await conn.execute(query, (account_id,))
    if await found.fetchone() is None:
        raise AccountNotFound(account_id)
