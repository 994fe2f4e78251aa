"""Reads of ``owner_summaries``: one owner's accounts and balances, or a page of owners.

The table has a row per (owner, currency) (``schema/sql/008_owner_summaries.sql``);
an owner's view adds its rows up into account counts and lists the balance of
each currency. Owners page by keyset on the owner itself (the primary key's
leading column), so page N costs what page 1 does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from query_service.cursors import OwnersCursor, encode_cursor
from query_service.errors import NotProjected
from query_service.owners.views import OwnerCurrencyView, OwnerPage, OwnerView

_COLUMNS = "owner, currency, balance, accounts, open_accounts, closed_accounts"
_ONE = f"SELECT {_COLUMNS} FROM owner_summaries WHERE owner = %s ORDER BY currency"
_PAGE = (
    "WITH page AS (SELECT DISTINCT owner FROM owner_summaries {where}"
    " ORDER BY owner LIMIT %(fetch)s)"
    f" SELECT {_COLUMNS} FROM owner_summaries JOIN page USING (owner) ORDER BY owner, currency"
)


class OwnerNotFound(NotProjected):
    """No account of this owner has been projected (yet)."""

    kind, title = "owner", "No such owner"

    def __init__(self, owner: str) -> None:
        super().__init__(f"no account of owner {owner!r} in the read models", owner=owner)
        self.owner = owner


def _views(rows: Sequence[tuple[Any, ...]]) -> list[OwnerView]:
    """Rows ordered by owner, then currency, grouped into one view per owner."""
    grouped: dict[str, list[OwnerCurrencyView]] = {}
    for owner, *sums in rows:
        grouped.setdefault(owner, []).append(OwnerCurrencyView.of_row(*sums))
    return [
        OwnerView(
            owner=owner,
            accounts=sum(c.accounts for c in currencies),
            open_accounts=sum(c.open_accounts for c in currencies),
            closed_accounts=sum(c.closed_accounts for c in currencies),
            currencies=currencies,
        )
        for owner, currencies in grouped.items()
    ]


async def owner_summary(conn: AsyncConnection[Any], owner: str) -> OwnerView:
    cursor = await conn.execute(_ONE, (owner,))
    views = _views(await cursor.fetchall())
    if not views:
        raise OwnerNotFound(owner)
    return views[0]


async def owner_page(
    conn: AsyncConnection[Any], *, limit: int, after: OwnersCursor | None
) -> OwnerPage:
    where = "WHERE owner > %(after)s" if after is not None else ""
    params: dict[str, object] = {"fetch": limit + 1}
    if after is not None:
        params["after"] = after.after_owner
    cursor = await conn.execute(_PAGE.format(where=where), params)
    views = _views(await cursor.fetchall())
    next_cursor = None
    if len(views) > limit:
        views = views[:limit]
        next_cursor = encode_cursor(OwnersCursor(views[-1].owner))
    return OwnerPage(items=views, next_cursor=next_cursor)
