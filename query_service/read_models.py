"""Queries over the read models the projector keeps: balances and statements.

The only tables read here are ``account_balances`` and ``account_transactions``
(see ``schema/sql/003_read_models.sql``); the event store is the projector's
business. Pages are keyset pages: each continues strictly after the last row
served, on a unique, indexed key, so concurrent inserts never repeat or skip a
row and the cost of page N does not grow with N.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from query_service.cursors import (
    MAX_BIGINT,
    AccountsCursor,
    InvalidCursor,
    StatementCursor,
    encode_cursor,
)
from query_service.views import (
    AccountPage,
    AccountStatus,
    AccountView,
    TransactionPage,
    TransactionView,
)

_ACCOUNT_COLUMNS = sql.SQL(
    "account_id, owner, currency, balance, status, version, opened_at, updated_at"
)


class AccountNotFound(LookupError):
    """No account with this id has been projected (yet)."""

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"no account {account_id}")
        self.account_id = account_id


@dataclass(frozen=True, kw_only=True)
class AccountFilter:
    """Which accounts ``GET /accounts`` lists; ``None`` means any."""

    owner: str | None = None
    status: AccountStatus | None = None
    min_balance: int | None = None


class ReadModels:
    """Read-only access to the ledger's read models through a connection pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def account(self, account_id: UUID) -> AccountView:
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
        # Without a cursor, start above any version a bigint can hold: one
        # query shape (and one plan) for the first page and the rest.
        before_version = after.before_version if after is not None else MAX_BIGINT
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(TransactionView))
            await cursor.execute(
                "SELECT position, version, kind, amount, currency, balance_after, reference,"
                " recorded_at FROM account_transactions"
                " WHERE account_id = %(account_id)s"
                " AND version < %(before)s"
                " ORDER BY version DESC LIMIT %(fetch)s",
                {"account_id": account_id, "before": before_version, "fetch": limit + 1},
            )
            lines = await cursor.fetchall()
            if not lines:
                # An empty page is either the end of a real statement or an
                # unknown account; only the second is a 404.
                found = await conn.execute(
                    "SELECT 1 FROM account_balances WHERE account_id = %s", (account_id,)
                )
                if await found.fetchone() is None:
                    raise AccountNotFound(account_id)
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
