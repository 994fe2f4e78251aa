"""The question about totals, its read of ``currency_totals`` and its registered handler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from projector.projections import currency_totals
from query_service.feature import ReadSide
from query_service.query_bus import Handler, Query
from query_service.totals.views import CurrencyTotal, Totals

TOTALS = currency_totals.NAME
_TOTALS = (
    "SELECT currency, balance, accounts, open_accounts, closed_accounts FROM currency_totals"
    " ORDER BY currency"
)


@dataclass(frozen=True)
class GetTotals(Query[Totals]):
    READS: ClassVar[tuple[str, ...]] = (TOTALS,)


def handlers(side: ReadSide) -> Mapping[type[Query[Any]], Handler]:
    async def get_totals(_: GetTotals) -> Totals:
        side.blocked.check_none((TOTALS,), "the totals")
        async with side.pool.connection() as conn:
            cursor = await conn.execute(_TOTALS)
            rows = await cursor.fetchall()
        return Totals(currencies=[CurrencyTotal.of_row(*row) for row in rows])

    return {GetTotals: get_totals}
