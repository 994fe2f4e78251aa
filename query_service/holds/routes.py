"""Hold routes: a hold by id, and an account's holds (under ``/accounts``)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from query_service.accounts.routes import ACCOUNT_RESPONSES
from query_service.conditional import IfNoneMatch, conditional
from query_service.cursors import HoldsCursor, continued_after
from query_service.holds.queries import GetHold, ListAccountHolds
from query_service.holds.views import HoldPage, HoldView
from query_service.query_bus import Ask
from query_service.responses import (
    CONDITIONAL_RESPONSES,
    CursorParam,
    not_found_responses,
)

_HOLD_RESPONSES = not_found_responses("hold-not-found, or an id that is not a UUID")


class HoldQueries(Controller):
    path = "/holds"
    tags = ["holds"]

    @get(
        "/{hold_id:uuid}",
        summary="A hold: placed, captured, released or expired",
        operation_id="getHold",
        responses={**_HOLD_RESPONSES, **CONDITIONAL_RESPONSES},
    )
    async def hold(
        self, hold_id: FromPath[UUID], ask: NamedDependency[Ask], if_none_match: IfNoneMatch = None
    ) -> Response[HoldView]:
        view = await ask(GetHold(hold_id))
        return conditional(view, view.version, if_none_match)


class AccountHoldQueries(Controller):
    path = "/accounts"
    tags = ["accounts"]

    @get(
        "/{account_id:uuid}/holds",
        summary="An account's holds, newest first",
        operation_id="listAccountHolds",
        responses=ACCOUNT_RESPONSES,
    )
    async def holds(
        self,
        *,
        account_id: FromPath[UUID],
        ask: NamedDependency[Ask],
        page_size: NamedDependency[int],
        cursor: CursorParam = None,
    ) -> HoldPage:
        after = continued_after(cursor, HoldsCursor)
        return await ask(ListAccountHolds(account_id, page_size, after))
