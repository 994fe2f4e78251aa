"""The questions about holds, and the handler each is registered to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from projector.projections import account_balances, holds
from query_service.account_pages import AccountListing
from query_service.cursors import HoldsCursor
from query_service.feature import ReadSide
from query_service.holds.reads import HoldReads
from query_service.holds.views import HoldPage, HoldView
from query_service.query_bus import Handler, Query, names


@dataclass(frozen=True)
class GetHold(Query[HoldView]):
    READS: ClassVar[tuple[str, ...]] = names([holds])
    hold_id: UUID


@dataclass(frozen=True)
class ListAccountHolds(AccountListing[HoldPage, HoldsCursor]):
    READS = names([holds, account_balances])
    LISTING = "holds"


def handlers(side: ReadSide) -> Mapping[type[Query[Any]], Handler]:
    reads = HoldReads(side.pool, side.blocked)

    async def get_hold(query: GetHold) -> HoldView:
        return await reads.hold(query.hold_id)

    async def list_account_holds(query: ListAccountHolds) -> HoldPage:
        return await reads.of_account(query.account_id, limit=query.limit, after=query.after)

    return {GetHold: get_hold, ListAccountHolds: list_account_holds}
