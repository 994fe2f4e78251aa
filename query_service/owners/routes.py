"""Owner routes: one owner, or every owner page by page; an unknown owner is a 404."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter

from query_service.cursors import OwnersCursor, continued_after
from query_service.owners.queries import GetOwner, ListOwners
from query_service.owners.views import OwnerPage, OwnerView
from query_service.query_bus import Ask
from query_service.responses import (
    OWNER_MAX_LENGTH,
    READ_RESPONSES,
    CursorParam,
    not_found_responses,
)

_OWNER_RESPONSES = not_found_responses(
    "owner-not-found: no account of this owner is projected"
)

OwnerParam = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=OWNER_MAX_LENGTH,
        pattern=r"^[^\x00]*$",
        description="The owner named when the accounts were opened.",
    ),
]


class OwnerQueries(Controller):
    path = "/owners"
    tags = ["owners"]

    @get(
        "/{owner:str}",
        summary="An owner's accounts (open, closed) and balance per currency",
        operation_id="getOwner",
        responses=_OWNER_RESPONSES,
    )
    async def one_owner(self, owner: OwnerParam, ask: NamedDependency[Ask]) -> OwnerView:
        return await ask(GetOwner(owner))

    @get(
        "/",
        summary="Every owner's summary, in owner order",
        operation_id="listOwners",
        responses=READ_RESPONSES,
    )
    async def every_owner(
        self,
        *,
        ask: NamedDependency[Ask],
        page_size: NamedDependency[int],
        cursor: CursorParam = None,
    ) -> OwnerPage:
        after = continued_after(cursor, OwnersCursor)
        return await ask(ListOwners(page_size, after))

