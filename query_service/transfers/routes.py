"""Transfer routes: a transfer by id, and an account's transfers (under ``/accounts``)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from query_service.accounts.routes import ACCOUNT_RESPONSES
from query_service.conditional import IfNoneMatch, conditional
from query_service.cursors import TransfersCursor, continued_after
from query_service.query_bus import Ask
from query_service.responses import (
    CONDITIONAL_RESPONSES,
    CursorParam,
    not_found_responses,
)
from query_service.transfers.queries import GetTransfer, ListAccountTransfers
from query_service.transfers.views import TransferPage, TransferView

_TRANSFER_RESPONSES = not_found_responses(
    "transfer-not-found, or an id that is not a UUID"
)


class TransferQueries(Controller):
    path = "/transfers"
    tags = ["transfers"]

    @get(
        "/{transfer_id:uuid}",
        summary="A transfer's status: requested, debited, completed, refunded or failed",
        operation_id="getTransfer",
        responses={**_TRANSFER_RESPONSES, **CONDITIONAL_RESPONSES},
    )
    async def transfer(
        self,
        transfer_id: FromPath[UUID],
        ask: NamedDependency[Ask],
        if_none_match: IfNoneMatch = None,
    ) -> Response[TransferView]:
        view = await ask(GetTransfer(transfer_id))
        return conditional(view, view.version, if_none_match)


class AccountTransferQueries(Controller):
    path = "/accounts"
    tags = ["accounts"]

    @get(
        "/{account_id:uuid}/transfers",
        summary="Transfers from or to an account, newest first",
        operation_id="listAccountTransfers",
        responses=ACCOUNT_RESPONSES,
    )
    async def transfers(
        self,
        *,
        account_id: FromPath[UUID],
        ask: NamedDependency[Ask],
        page_size: NamedDependency[int],
        cursor: CursorParam = None,
    ) -> TransferPage:
        after = continued_after(cursor, TransfersCursor)
        return await ask(ListAccountTransfers(account_id, page_size, after))

