"""Query routes of money moving: one transfer by id, and the totals per currency.

An account's own transfers are listed under ``/accounts`` (see ``routes``).
Like every query here, both wait for ``min_position`` (on the projections
they read only) and answer with ``X-Projection-Position``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.status_codes import HTTP_404_NOT_FOUND

from query_service.conditional import IfNoneMatch, conditional
from query_service.metrics import QueryTimer
from query_service.projection_position import TOTALS, TRANSFERS
from query_service.read_models import ReadModels, TransferNotFound
from query_service.read_your_writes import reads
from query_service.routes import CONDITIONAL_RESPONSES, READ_RESPONSES, problem_spec
from query_service.views import Totals, TransferView
from shared_kernel.problems import problem

_TRANSFER_RESPONSES = {
    **READ_RESPONSES,
    HTTP_404_NOT_FOUND: problem_spec("transfer-not-found, or an id that is not a UUID"),
}


class TransferQueries(Controller):
    path = "/transfers"
    tags = ["transfers"]
    middleware = [QueryTimer()]

    @get(
        "/{transfer_id:uuid}",
        summary="A transfer's status: requested, debited, completed, refunded or failed",
        operation_id="getTransfer",
        responses={**_TRANSFER_RESPONSES, **CONDITIONAL_RESPONSES},
        opt=reads(TRANSFERS),
    )
    async def transfer(
        self, transfer_id: UUID, read_models: ReadModels, if_none_match: IfNoneMatch = None
    ) -> Response[TransferView]:
        view = await read_models.transfer(transfer_id)
        return conditional(view, view.version, if_none_match)


class TotalsQueries(Controller):
    path = "/totals"
    tags = ["totals"]
    middleware = [QueryTimer()]

    @get(
        "/",
        summary="Per currency: the sum of all balances and the number of accounts",
        operation_id="getTotals",
        responses=READ_RESPONSES,
        opt=reads(TOTALS),
    )
    async def totals(self, read_models: ReadModels) -> Totals:
        return await read_models.totals()


def _transfer_not_found(request: Request[Any, Any, Any], exc: TransferNotFound) -> Response[Any]:
    return problem(
        HTTP_404_NOT_FOUND,
        "transfer-not-found",
        "No such transfer",
        f"no transfer {exc.transfer_id} in the read models",
        transfer_id=str(exc.transfer_id),
    ).to_response(request)


#: Exception handlers of these routes, beside ``routes.QUERY_EXCEPTION_HANDLERS``.
TRANSFER_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    TransferNotFound: _transfer_not_found,
}
