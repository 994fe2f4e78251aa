"""The totals route."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from query_service.query_bus import Ask
from query_service.responses import READ_RESPONSES
from query_service.totals.queries import GetTotals
from query_service.totals.views import Totals


class TotalsQueries(Controller):
    path = "/totals"
    tags = ["totals"]

    @get(
        "/",
        summary="Per currency: the sum of all balances and the number of accounts",
        operation_id="getTotals",
        responses=READ_RESPONSES,
    )
    async def totals(self, ask: NamedDependency[Ask]) -> Totals:
        return await ask(GetTotals())
