"""Reads of ``account_balances`` and ``account_transactions``: accounts and statements.

Pages are keyset pages: each continues strictly after the last row served, on
a unique, indexed key, so concurrent inserts never repeat or skip a row and the
cost of page N does not grow with N. Nothing shown may include a stream the
projector holds back (``blocked``): such a read raises ``ReadModelBlocked`` (503).
"""

from __future__ import annotations

from uuid import UUID

from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from projector.projections import account_balances, account_transactions
from query_service.account_pages import account_exists
from query_service.accounts.views import (
    AccountPage,
    AccountStatus,
    AccountView,
    TransactionPage,
    TransactionView,
)
from query_service.blocked_streams import BlockedStreams
from query_service.cursors import MAX_BIGINT, AccountsCursor, StatementCursor, encode_cursor
from query_service.errors import AccountNotFound
from query_service.one_view import OneView

BALANCES, STATEMENTS = account_balances.NAME, account_transactions.NAME
_ACCOUNT_COLUMNS = sql.SQL(
    "account_id, owner, currency, balance, balance - held AS available, status, version,"
    " opened_at, updated_at"
)
# Rendered once: a composed statement would be rendered to bytes again per read.
_ONE_ACCOUNT = OneView(
    f"SELECT {_ACCOUNT_COLUMNS.as_string()} FROM account_balances WHERE account_id = %s",
    AccountView,
)
_STATEMENT = (
    "SELECT position, version, kind, amount, currency, balance_after, reference,"
    " recorded_at, counterparty, transfer_id FROM account_transactions"
    " WHERE account_id = %(account_id)s AND version < %(before)s"
    " ORDER BY version DESC LIMIT %(fetch)s"
)


class AccountReads:
    def __init__(self, pool: AsyncConnectionPool, blocked: BlockedStreams) -> None:
        self._pool = pool
        self._blocked = blocked

    async def account(self, account_id: UUID) -> AccountView:
        self._blocked.check_stream((BALANCES,), account_id, f"account {account_id}")
        view = await _ONE_ACCOUNT.read(self._pool, account_id)
        if view is None:
            raise AccountNotFound(account_id)
        return view

    async def statement(
        self, account_id: UUID, *, limit: int, after: StatementCursor | None
    ) -> TransactionPage:
        """The account's lines newest first, older than the cursor's version."""
        self._blocked.check_stream(
            (STATEMENTS, BALANCES), account_id, f"the statement of account {account_id}"
        )
        # Without a cursor, start above any version a bigint can hold: one
        # query shape (and one plan) for the first page and the rest.
        before_version = after.before_version if after is not None else MAX_BIGINT
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(TransactionView))
            await cursor.execute(
                _STATEMENT, {"account_id": account_id, "before": before_version, "fetch": limit + 1}
            )
            lines = await cursor.fetchall()
            if not lines:
                await account_exists(conn, account_id)
        next_cursor = None
        if len(lines) > limit:
            lines = lines[:limit]
            next_cursor = encode_cursor(StatementCursor(account_id, lines[-1].version))
        return TransactionPage(items=lines, next_cursor=next_cursor)

    async def accounts(
        self,
        *,
        owner: str | None,
        status: AccountStatus | None,
        min_balance: int | None,
        limit: int,
        after: AccountsCursor | None,
    ) -> AccountPage:
        """Accounts matching the filters in account id order, after the cursor's id."""
        # Where a blocked account falls in a filtered listing is unknown (its
        # status, balance, even its owner may be among what is held back).
        self._blocked.check_none((BALANCES,), "the account listing")
        # Only the filters given become SQL, so each combination gets a plan
        # that can use its index instead of one generic "x IS NULL OR" plan.
        conditions: list[sql.Composable] = []
        params: dict[str, object] = {"fetch": limit + 1}
        if owner is not None:
            conditions.append(sql.SQL("owner = %(owner)s"))
            params["owner"] = owner
        if status is not None:
            conditions.append(sql.SQL("status = %(status)s"))
            params["status"] = status
        if min_balance is not None:
            conditions.append(sql.SQL("balance >= %(min_balance)s"))
            params["min_balance"] = min_balance
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
                AccountsCursor(rows[-1].account_id, owner, status, min_balance)
            )
        return AccountPage(items=rows, next_cursor=next_cursor)
