"""The query routes: thin handlers from HTTP parameters to read-model queries.

Validation the type system cannot express here (the configured page size
limit, cursors) ends in a 422 problem document; unknown accounts in a 404.
Freshness is the ``read_models`` dependency's job (see ``read_your_writes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import (
    HTTP_304_NOT_MODIFIED,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_412_PRECONDITION_FAILED,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from query_service.blocked_streams import ReadModelBlocked, read_model_blocked
from query_service.conditional import NOT_MODIFIED, IfNoneMatch, conditional
from query_service.cursors import (
    MAX_BIGINT,
    MAX_CURSOR_LENGTH,
    AccountsCursor,
    InvalidCursor,
    StatementCursor,
    TransfersCursor,
    decode_cursor,
)
from query_service.metrics import QueryTimer
from query_service.projection_position import BALANCES, STATEMENTS, TRANSFERS
from query_service.read_models import AccountFilter, AccountNotFound, ReadModels
from query_service.read_your_writes import reads
from query_service.time_travel import AccountHistory
from query_service.views import (
    AccountAsOfView,
    AccountPage,
    AccountStatus,
    AccountView,
    TransactionPage,
    TransferPage,
)
from shared_kernel import openapi_contract
from shared_kernel.outages import outage_handlers
from shared_kernel.problems import problem

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
#: Owners are 1..200 characters when an account is opened (command side).
OWNER_MAX_LENGTH = 200

CursorParam = Annotated[
    str | None,
    Parameter(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="next_cursor of the previous page; omit for the first page.",
    ),
]


def page_size(maximum: int) -> Callable[..., int]:
    """Litestar dependency ``page_size``: the ``limit`` asked for, 1 to ``maximum``."""

    def resolve(limit: int | None = None) -> int:
        return min(DEFAULT_PAGE_SIZE, maximum) if limit is None else limit

    # The bound is a setting: litestar validates and documents it from the signature.
    resolve.__annotations__ = {
        "limit": Annotated[
            int | None,
            Parameter(
                ge=1, le=maximum, description=f"Items per page (default 50, at most {maximum})."
            ),
        ],
        "return": int,
    }
    return resolve


class ProblemDocument(openapi_contract.ProblemDocument):
    """The shape of this service's RFC 9457 answers (for the OpenAPI document)."""

    account_id: str | None = None
    transfer_id: str | None = None
    owner: str | None = None
    min_position: int | None = None
    projection_position: int | None = None
    blocked: list[dict[str, Any]] | None = None


def problem_spec(description: str) -> ResponseSpec:
    return openapi_contract.problem_response(description, ProblemDocument)


READ_RESPONSES = {
    # Litestar documents a 400 for every handler with parameters; here it only
    # happens for a request that cannot be parsed at all, as a problem document.
    HTTP_400_BAD_REQUEST: problem_spec("bad-request: the request could not be parsed"),
    HTTP_412_PRECONDITION_FAILED: problem_spec(
        "projection-behind: min_position not reached within max_wait_seconds (see Retry-After)"
    ),
    HTTP_422_UNPROCESSABLE_ENTITY: problem_spec(
        "validation-failed or invalid-cursor: a parameter or header is not valid"
    ),
    HTTP_503_SERVICE_UNAVAILABLE: problem_spec(
        "read-models-unavailable: retry later; or read-model-blocked: what this read shows"
        " includes a stream the projector holds back after refusing one of its events (`blocked`"
        " names them) until an operator replays it"
    ),
}
_ACCOUNT_RESPONSES = {
    **READ_RESPONSES,
    HTTP_404_NOT_FOUND: problem_spec("account-not-found, or an id that is not a UUID"),
}
#: The reads of one versioned resource: an ETag, and 304 for If-None-Match.
CONDITIONAL_RESPONSES = {HTTP_304_NOT_MODIFIED: NOT_MODIFIED}


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
    middleware = [QueryTimer()]

    @get(
        "/{account_id:uuid}",
        summary="An account's balance and status (now, or as of a past position)",
        operation_id="getAccount",
        responses={**_ACCOUNT_RESPONSES, **CONDITIONAL_RESPONSES},
        opt=reads(BALANCES),
    )
    async def account(
        self,
        account_id: UUID,
        read_models: ReadModels,
        account_history: AccountHistory,
        as_of: AsOfParam = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response[AccountView | AccountAsOfView]:
        view: AccountView
        if as_of is not None:
            view = await account_history.account_as_of(account_id, as_of)
        else:
            view = await read_models.account(account_id)
        return conditional(view, view.version, if_none_match)

    @get(
        "/{account_id:uuid}/transactions",
        summary="An account's statement, newest first",
        operation_id="listAccountTransactions",
        responses=_ACCOUNT_RESPONSES,
        opt=reads(STATEMENTS, BALANCES),
    )
    async def statement(
        self,
        *,
        account_id: UUID,
        read_models: ReadModels,
        page_size: int,
        cursor: CursorParam = None,
    ) -> TransactionPage:
        after = decode_cursor(cursor, StatementCursor) if cursor is not None else None
        return await read_models.statement(account_id, limit=page_size, after=after)

    @get(
        "/{account_id:uuid}/transfers",
        summary="Transfers from or to an account, newest first",
        operation_id="listAccountTransfers",
        responses=_ACCOUNT_RESPONSES,
        opt=reads(TRANSFERS, BALANCES),
    )
    async def transfers(
        self,
        *,
        account_id: UUID,
        read_models: ReadModels,
        page_size: int,
        cursor: CursorParam = None,
    ) -> TransferPage:
        after = decode_cursor(cursor, TransfersCursor) if cursor is not None else None
        return await read_models.account_transfers(account_id, limit=page_size, after=after)

    @get(
        "/",
        summary="Accounts by owner, status and balance, in account id order",
        operation_id="listAccounts",
        responses=READ_RESPONSES,
        opt=reads(BALANCES),
    )
    async def accounts(
        self,
        *,
        read_models: ReadModels,
        page_size: int,
        owner: Annotated[
            str | None,
            Parameter(min_length=1, max_length=OWNER_MAX_LENGTH, pattern=r"^[^\x00]*$"),
        ] = None,
        status: AccountStatus | None = None,
        min_balance: Annotated[int | None, Parameter(ge=0, le=MAX_BIGINT)] = None,
        cursor: CursorParam = None,
    ) -> AccountPage:
        where = AccountFilter(owner=owner, status=status, min_balance=min_balance)
        after = decode_cursor(cursor, AccountsCursor) if cursor is not None else None
        return await read_models.accounts(where, limit=page_size, after=after)


def _account_not_found(request: Request[Any, Any, Any], exc: AccountNotFound) -> Response[Any]:
    return problem(
        HTTP_404_NOT_FOUND,
        "account-not-found",
        "No such account",
        f"no account {exc.account_id} in the read models",
        account_id=str(exc.account_id),
    ).to_response(request)


def _invalid_cursor(request: Request[Any, Any, Any], exc: InvalidCursor) -> Response[Any]:
    return problem(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "invalid-cursor",
        "The cursor is not valid for this query",
        str(exc),
    ).to_response(request)


#: Exception handlers of the query routes, beside ``shared_kernel.problems``'s.
QUERY_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    AccountNotFound: _account_not_found,
    ReadModelBlocked: read_model_blocked,
    InvalidCursor: _invalid_cursor,
    **outage_handlers("read-models-unavailable", "The read models cannot be reached right now"),
}
