"""The questions about owners, and the handler each is registered to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from projector.projections import owner_summaries
from query_service.cursors import OwnersCursor
from query_service.feature import ReadSide
from query_service.owners.reads import owner_page, owner_summary
from query_service.owners.views import OwnerPage, OwnerView
from query_service.query_bus import Handler, Query

OWNERS = owner_summaries.NAME


@dataclass(frozen=True)
class GetOwner(Query[OwnerView]):
    READS: ClassVar[tuple[str, ...]] = (OWNERS,)
    owner: str


@dataclass(frozen=True)
class ListOwners(Query[OwnerPage]):
    READS: ClassVar[tuple[str, ...]] = (OWNERS,)
    limit: int
    after: OwnersCursor | None


def handlers(side: ReadSide) -> Mapping[type[Query[Any]], Handler]:
    async def get_owner(query: GetOwner) -> OwnerView:
        # An owner's accounts are found by owner; a blocked account's owner may
        # be what could not be stored, so any block could be one of theirs.
        side.blocked.check_none((OWNERS,), f"the summary of owner {query.owner!r}")
        async with side.pool.connection() as conn:
            return await owner_summary(conn, query.owner)

    async def list_owners(query: ListOwners) -> OwnerPage:
        side.blocked.check_none((OWNERS,), "the owner listing")
        async with side.pool.connection() as conn:
            return await owner_page(conn, limit=query.limit, after=query.after)

    return {GetOwner: get_owner, ListOwners: list_owners}
