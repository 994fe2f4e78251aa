"""Query routes of the ``owner_summaries`` read model: one owner, or every owner page by page.

Like every query here they wait for ``min_position`` (on ``owner_summaries``
only) and answer with ``X-Projection-Position``; an owner with no account
projected is a 404 ``owner-not-found``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import PathParameter
from litestar.status_codes import HTTP_404_NOT_FOUND

from query_service.cursors import OwnersCursor, decode_cursor
from query_service.metrics import QueryTimer
from query_service.owner_summaries import OwnerNotFound
from query_service.projection_position import OWNERS
from query_service.read_models import ReadModels
from query_service.read_your_writes import reads
from query_service.routes import OWNER_MAX_LENGTH, READ_RESPONSES, CursorParam, problem_spec
from query_service.views import OwnerPage, OwnerView
from shared_kernel.problems import problem

_OWNER_RESPONSES = {
    **READ_RESPONSES,
    HTTP_404_NOT_FOUND: problem_spec("owner-not-found: no account of this owner is projected"),
}

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
    middleware = [QueryTimer()]

    @get(
        "/{owner:str}",
        summary="An owner's accounts (open, closed) and balance per currency",
        operation_id="getOwner",
        responses=_OWNER_RESPONSES,
        opt=reads(OWNERS),
    )
    async def one_owner(self, owner: OwnerParam, read_models: ReadModels) -> OwnerView:
        return await read_models.owner(owner)

    @get(
        "/",
        summary="Every owner's summary, in owner order",
        operation_id="listOwners",
        responses=READ_RESPONSES,
        opt=reads(OWNERS),
    )
    async def every_owner(
        self, *, read_models: ReadModels, page_size: int, cursor: CursorParam = None
    ) -> OwnerPage:
        after = decode_cursor(cursor, OwnersCursor) if cursor is not None else None
        return await read_models.owners(limit=page_size, after=after)


def _owner_not_found(request: Request[Any, Any, Any], exc: OwnerNotFound) -> Response[Any]:
    return problem(
        HTTP_404_NOT_FOUND,
        "owner-not-found",
        "No such owner",
        f"no account of owner {exc.owner!r} in the read models",
        owner=exc.owner,
    ).to_response(request)


#: Exception handlers of these routes, beside ``routes.QUERY_EXCEPTION_HANDLERS``.
OWNER_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {OwnerNotFound: _owner_not_found}
