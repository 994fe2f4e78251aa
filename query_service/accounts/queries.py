"""The questions about accounts, and the handler each is registered to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from projector.projections import account_balances, account_transactions
from query_service.account_pages import AccountListing
from query_service.accounts.reads import AccountReads
from query_service.accounts.time_travel import AccountHistory
from query_service.accounts.views import (
    AccountAsOfView,
    AccountPage,
    AccountStatus,
    AccountView,
    TransactionPage,
)
from query_service.cursors import AccountsCursor, InvalidCursor, StatementCursor
from query_service.feature import ReadSide
from query_service.query_bus import Handler, Query, names

BALANCES = account_balances.NAME


@dataclass(frozen=True)
class GetAccount(Query[AccountView]):
    READS: ClassVar[tuple[str, ...]] = (BALANCES,)
    account_id: UUID


@dataclass(frozen=True)
class GetAccountAsOf(Query[AccountAsOfView]):
    """Folded from the account's own events up to ``as_of``: reads no live projection."""

    account_id: UUID
    as_of: int


@dataclass(frozen=True)
class GetStatement(AccountListing[TransactionPage, StatementCursor]):
    READS = names([account_transactions, account_balances])
    LISTING = "statement"


@dataclass(frozen=True, kw_only=True)
class ListAccounts(Query[AccountPage]):
    """Accounts matching the filters (``None``: any) in account id order."""

    READS: ClassVar[tuple[str, ...]] = (BALANCES,)
    owner: str | None = None
    status: AccountStatus | None = None
    min_balance: int | None = None
    limit: int
    after: AccountsCursor | None

    def check(self) -> None:
        after = self.after
        if after is not None and (after.owner, after.status, after.min_balance) != (
            self.owner,
            self.status,
            self.min_balance,
        ):
            raise InvalidCursor("the cursor continues a query with other filters")


def handlers(side: ReadSide) -> Mapping[type[Query[Any]], Handler]:
    reads = AccountReads(side.pool, side.blocked)
    history = AccountHistory(side.travel_pool)

    async def get_account(query: GetAccount) -> AccountView:
        return await reads.account(query.account_id)

    async def get_account_as_of(query: GetAccountAsOf) -> AccountAsOfView:
        return await history.account_as_of(query.account_id, query.as_of)

    async def get_statement(query: GetStatement) -> TransactionPage:
        return await reads.statement(query.account_id, limit=query.limit, after=query.after)

    async def list_accounts(query: ListAccounts) -> AccountPage:
        return await reads.accounts(
            owner=query.owner, status=query.status, min_balance=query.min_balance,
            limit=query.limit, after=query.after,
        )  # fmt: skip

    return {
        GetAccount: get_account,
        GetAccountAsOf: get_account_as_of,
        GetStatement: get_statement,
        ListAccounts: list_accounts,
    }
