"""``POST /transfers``: record a transfer request; the saga moves the money.

The answer is 202: the request is in the event store (its ``position`` works
with the query service's read-your-writes), the money has not moved yet.
``Location`` names the query service's ``/transfers/{id}``, where the
transfer's status (requested, debited, completed, refunded, failed) shows.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from command_service.bus.bus import CommandBus
from command_service.commands import RequestTransfer
from command_service.http.accounts import problems
from command_service.http.bodies import TransferAcceptedResponse, TransferRequest, decode_strictly
from command_service.http.headers import CorrelationIdHeader, location
from command_service.http.requested import requested
from command_service.idempotency.middleware import IDEMPOTENCY_PARAMETERS


class TransferCommands(Controller):
    path = "/transfers"
    tags = ["transfers"]
    parameters = IDEMPOTENCY_PARAMETERS

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Request a transfer between two accounts of one currency",
        operation_id="requestTransfer",
        description=(
            "Refused at once (422) for the same account on both sides, an amount that is not"
            " a positive integer, or accounts in different currencies; 404 for an unknown"
            " source. Everything else is decided by the saga: the transfer ends completed,"
            " refunded (target closed or missing) or failed (source closed, insufficient funds)."
        ),
        responses=problems(400, 404, 409, 413, 422, 503),
        before_request=decode_strictly,
    )
    async def request_transfer(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TransferRequest],
        commands: NamedDependency[CommandBus],
        x_correlation_id: CorrelationIdHeader = None,
    ) -> Response[TransferAcceptedResponse]:
        command = requested(
            RequestTransfer,
            request,
            x_correlation_id,
            account_id=data.from_account,
            to_account=data.to_account,
            amount=data.amount,
        )
        accepted = await commands.dispatch(command)
        return Response(
            TransferAcceptedResponse(transfer_id=accepted.transfer_id, position=accepted.position),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": location(request, f"/transfers/{accepted.transfer_id}")},
        )
