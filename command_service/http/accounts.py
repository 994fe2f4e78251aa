"""``/accounts``: each handler builds one command and dispatches it on the command bus.

No rule lives here: the handlers only translate HTTP (path, body, If-Match,
correlation id) into a command, and the result into a body with its version
as the ETag. Refusals travel as exceptions to the problem handlers in
:mod:`command_service.http.app`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from command_service.bus.bus import CommandBus
from command_service.commands import (
    CloseAccount,
    CommandResult,
    DepositMoney,
    OpenAccount,
    WithdrawMoney,
)
from command_service.http.bodies import (
    AccountChangedResponse,
    AccountOpenedResponse,
    DepositRequest,
    MoneyRequest,
    OpenAccountRequest,
    decode_strictly,
)
from command_service.http.headers import (
    CorrelationIdHeader,
    IfMatch,
    expected_versions,
    location,
)
from command_service.http.requested import requested
from command_service.idempotency.middleware import IDEMPOTENCY_PARAMETERS, attempt_of
from shared_kernel.entity_tags import etag
from shared_kernel.openapi_contract import problem_response


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: problem_response("A problem document (application/problem+json)")
        for status in statuses
    }


def _changed(result: CommandResult) -> Response[AccountChangedResponse]:
    return Response(
        AccountChangedResponse(
            account_id=result.account_id,
            version=result.version,
            position=result.position,
            balance=result.balance,
        ),
        status_code=HTTP_200_OK,
        headers={"ETag": etag(result.version)},
    )


def _money_route(path: str, operation_id: str, summary: str) -> post:
    """The route of a deposit or a withdrawal: the same statuses, problems and body decoding."""
    return post(
        path,
        status_code=HTTP_200_OK,
        summary=summary,
        operation_id=operation_id,
        responses=problems(400, 404, 409, 412, 413, 422, 503),
        before_request=decode_strictly,
    )


async def _move_money(
    kind: type[DepositMoney | WithdrawMoney],
    request: Request[Any, Any, Any],
    commands: CommandBus,
    *,
    account_id: UUID,
    data: MoneyRequest,
    x_correlation_id: str | None,
    if_match: str | None,
) -> Response[AccountChangedResponse]:
    """A deposit or a withdrawal: the request's command of ``kind``, submitted."""
    extra: dict[str, Any] = {"channel": data.channel} if isinstance(data, DepositRequest) else {}
    command = requested(
        kind,
        request,
        x_correlation_id,
        account_id=account_id,
        amount=data.amount,
        currency=data.currency,
        reference=data.reference,
        expected_versions=expected_versions(if_match),
        **extra,
    )
    return _changed(await commands.dispatch(command))


class AccountCommands(Controller):
    path = "/accounts"
    tags = ["accounts"]
    parameters = IDEMPOTENCY_PARAMETERS

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Open an account",
        operation_id="openAccount",
        responses=problems(400, 409, 413, 422, 503),
        before_request=decode_strictly,
    )
    async def open_account(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OpenAccountRequest],
        commands: NamedDependency[CommandBus],
        x_correlation_id: CorrelationIdHeader = None,
    ) -> Response[AccountOpenedResponse]:
        attempt = attempt_of(request)
        command = requested(
            OpenAccount,
            request,
            x_correlation_id,
            attempt=attempt,
            account_id=data.account_id or attempt.command_id,
            client_supplied_id=data.account_id is not None,
            owner=data.owner,
            currency=data.currency,
        )
        result = await commands.dispatch(command)
        return Response(
            AccountOpenedResponse(
                account_id=result.account_id, version=result.version, position=result.position
            ),
            status_code=HTTP_201_CREATED,
            headers={
                "ETag": etag(result.version),
                "Location": location(request, f"/accounts/{result.account_id}"),
            },
        )

    @_money_route("/{account_id:uuid}/deposits", "deposit", "Deposit money")
    async def deposit(
        self,
        account_id: FromPath[UUID],
        data: JSONBody[DepositRequest],
        commands: NamedDependency[CommandBus],
        request: Request[Any, Any, Any],
        *,
        x_correlation_id: CorrelationIdHeader = None,
        if_match: IfMatch = None,
    ) -> Response[AccountChangedResponse]:
        return await _move_money(
            DepositMoney,
            request,
            commands,
            account_id=account_id,
            data=data,
            x_correlation_id=x_correlation_id,
            if_match=if_match,
        )

    @_money_route("/{account_id:uuid}/withdrawals", "withdraw", "Withdraw money (never below zero)")
    async def withdraw(
        self,
        account_id: FromPath[UUID],
        data: JSONBody[MoneyRequest],
        commands: NamedDependency[CommandBus],
        request: Request[Any, Any, Any],
        *,
        x_correlation_id: CorrelationIdHeader = None,
        if_match: IfMatch = None,
    ) -> Response[AccountChangedResponse]:
        return await _move_money(
            WithdrawMoney,
            request,
            commands,
            account_id=account_id,
            data=data,
            x_correlation_id=x_correlation_id,
            if_match=if_match,
        )

    @post(
        "/{account_id:uuid}/close",
        status_code=HTTP_200_OK,
        summary="Close an empty account",
        operation_id="closeAccount",
        responses=problems(400, 404, 409, 412, 422, 503),
    )
    async def close(
        self,
        account_id: FromPath[UUID],
        commands: NamedDependency[CommandBus],
        request: Request[Any, Any, Any],
        *,
        x_correlation_id: CorrelationIdHeader = None,
        if_match: IfMatch = None,
    ) -> Response[AccountChangedResponse]:
        command = requested(
            CloseAccount,
            request,
            x_correlation_id,
            account_id=account_id,
            expected_versions=expected_versions(if_match),
        )
        return _changed(await commands.dispatch(command))
