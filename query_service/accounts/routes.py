"""Account routes: each builds its query from the parameters and asks the bus."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from query_service.accounts.queries import GetAccount, GetAccountAsOf, GetStatement, ListAccounts
from query_service.accounts.views import (
    AccountAsOfView,
    AccountPage,
    AccountStatus,
    AccountView,
    TransactionPage,
)
from query_service.conditional import IfNoneMatch, conditional
from query_service.cursors import (
    MAX_BIGINT,
    AccountsCursor,
    StatementCursor,
    continued_after,
)
from query_service.query_bus import Ask
from query_service.responses import (
    CONDITIONAL_RESPONSES,
    OWNER_MAX_LENGTH,
    READ_RESPONSES,
    CursorParam,
    not_found_responses,
)

ACCOUNT_RESPONSES = not_found_responses("account-not-found, or an id that is not a UUID")
AsOfParam = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=MAX_BIGINT,
        description="Time travel: the account as the read models showed it when the event log"
        " stood at this position, folded from the account's own events (adds `as_of`).",
    ),
]


class AccountQueries(Controller):
    path = "/accounts"
    tags = ["accounts"]

    @get(
        "/{account_id:uuid}",
        summary="An account's balance and status (now, or as of a past position)",
        operation_id="getAccount",
        responses={**ACCOUNT_RESPONSES, **CONDITIONAL_RESPONSES},
    )
    async def account(
        self,
        account_id: FromPath[UUID],
        ask: NamedDependency[Ask],
        as_of: AsOfParam = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response[AccountView | AccountAsOfView]:
        view: AccountView
        if as_of is not None:
            view = await ask(GetAccountAsOf(account_id, as_of))
        else:
            view = await ask(GetAccount(account_id))
        return conditional(view, view.version, if_none_match)

    @get(
        "/{account_id:uuid}/transactions",
        summary="An account's statement, newest first",
        operation_id="listAccountTransactions",
        responses=ACCOUNT_RESPONSES,
    )
    async def statement(
        self,
        *,
        account_id: FromPath[UUID],
        ask: NamedDependency[Ask],
        page_size: NamedDependency[int],
        cursor: CursorParam = None,
    ) -> TransactionPage:
        after = continued_after(cursor, StatementCursor)
        return await ask(GetStatement(account_id, page_size, after))

    @get(
        "/",
        summary="Accounts by owner, status and balance, in account id order",
        operation_id="listAccounts",
        responses=READ_RESPONSES,
    )
    async def accounts(
        self,
        *,
        ask: NamedDependency[Ask],
        page_size: NamedDependency[int],
        owner: Annotated[
            str | None,
            Parameter(min_length=1, max_length=OWNER_MAX_LENGTH, pattern=r"^[^\x00]*$"),
        ] = None,
        status: FromQuery[AccountStatus | None] = None,
        min_balance: Annotated[int | None, Parameter(ge=0, le=MAX_BIGINT)] = None,
        cursor: CursorParam = None,
    ) -> AccountPage:
        after = continued_after(cursor, AccountsCursor)
        return await ask(ListAccounts(owner=owner, status=status, min_balance=min_balance,
                                      limit=page_size, after=after))  # fmt: skip

