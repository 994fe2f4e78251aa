"""``POST /accounts/{id}/holds``, ``POST /holds/{id}/capture``, ``POST /holds/{id}/release``.

Thin routes: each builds its command and dispatches it on the bus; a refusal
comes back as a problem document (:mod:`command_service.http.refusals`). A
placed hold's ``Location`` names the query service's ``/holds/{id}``.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from command_service.bus.bus import CommandBus
from command_service.domain.hold import MAX_EXPIRY_SECONDS
from command_service.holds import CaptureHold, HoldOutcome, PlaceHold, ReleaseHold
from command_service.http.accounts import problems
from command_service.http.bodies import Amount, Reference, decode_strictly
from command_service.http.headers import CorrelationIdHeader, location
from command_service.http.requested import requested
from command_service.idempotency.middleware import IDEMPOTENCY_PARAMETERS

ExpiresIn = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=MAX_EXPIRY_SECONDS,
        description="Seconds until the hold is released unless captured or released before.",
    ),
]


class PlaceHoldRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Reserve ``amount`` of what the account has available."""

    amount: Amount
    reference: Reference
    expires_in_seconds: ExpiresIn


class CaptureHoldRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Withdraw ``amount`` (at most the held amount); the rest is released."""

    amount: Amount


class HoldPlacedResponse(msgspec.Struct, kw_only=True):
    hold_id: UUID
    position: int


class HoldCommands(Controller):
    path = "/"
    tags = ["holds"]
    parameters = IDEMPOTENCY_PARAMETERS

    @post(
        "/accounts/{account_id:uuid}/holds",
        status_code=HTTP_201_CREATED,
        summary="Place a hold on money the account has available",
        operation_id="placeHold",
        description=(
            "Reserves the amount until it is captured, released, or its deadline passes"
            " (then it is released). 422 insufficient-funds when the amount exceeds what is"
            " available (the balance minus active holds)."
        ),
        responses=problems(400, 404, 409, 413, 422, 503),
        before_request=decode_strictly,
    )
    async def place(
        self,
        account_id: FromPath[UUID],
        data: JSONBody[PlaceHoldRequest],
        commands: NamedDependency[CommandBus],
        request: Request[Any, Any, Any],
        *,
        x_correlation_id: CorrelationIdHeader = None,
    ) -> Response[HoldPlacedResponse]:
        command = requested(
            PlaceHold,
            request,
            x_correlation_id,
            account_id=account_id,
            amount=data.amount,
            reference=data.reference,
            expires_in_seconds=data.expires_in_seconds,
        )
        accepted = await commands.dispatch(command)
        return Response(
            HoldPlacedResponse(hold_id=accepted.hold_id, position=accepted.position),
            status_code=HTTP_201_CREATED,
            headers={"Location": location(request, f"/holds/{accepted.hold_id}")},
        )

    @post(
        "/holds/{hold_id:uuid}/capture",
        status_code=HTTP_200_OK,
        summary="Capture a hold: withdraw up to the held amount, release the rest",
        operation_id="captureHold",
        responses=problems(400, 404, 409, 413, 422, 503),
        before_request=decode_strictly,
    )
    async def capture(
        self,
        hold_id: FromPath[UUID],
        data: JSONBody[CaptureHoldRequest],
        commands: NamedDependency[CommandBus],
        request: Request[Any, Any, Any],
        *,
        x_correlation_id: CorrelationIdHeader = None,
    ) -> HoldOutcome:
        command = requested(
            CaptureHold, request, x_correlation_id, hold_id=hold_id, amount=data.amount
        )
        return await commands.dispatch(command)

    @post(
        "/holds/{hold_id:uuid}/release",
        status_code=HTTP_200_OK,
        summary="Release a hold: the held amount is available again",
        operation_id="releaseHold",
        responses=problems(400, 404, 409, 422, 503),
    )
    async def release(
        self,
        hold_id: FromPath[UUID],
        commands: NamedDependency[CommandBus],
        request: Request[Any, Any, Any],
        *,
        x_correlation_id: CorrelationIdHeader = None,
    ) -> HoldOutcome:
        command = requested(ReleaseHold, request, x_correlation_id, hold_id=hold_id)
        return await commands.dispatch(command)

