"""How HTTP answers a refusal: a problem document whose status the refusal's type maps to.

Domain errors name no transport; this table does. A refusal of a rule the
request breaks is 422; a state that conflicts with the request is 409; an
unknown id 404; an ``If-Match`` that names no current version 412 (RFC 9110).
"""

from __future__ import annotations

from typing import Any, cast

from litestar import Request, Response

from command_service.domain.account import (
    AccountIsClosed,
    AccountNotEmpty,
    DomainError,
    TransfersPending,
)
from command_service.domain.hold import HoldNotActive, HoldNotFound
from command_service.domain.legs import TransferAlreadyPending, TransferNotPending
from command_service.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    PreconditionFailed,
    VersionConflict,
)
from shared_kernel.problems import problem

#: A rule the request breaks (invalid amount, insufficient funds, ...), unless listed below.
RULE_BROKEN = 422

_STATUS: dict[type[DomainError], int] = {
    AccountNotFound: 404,
    HoldNotFound: 404,
    HoldNotActive: 409,
    PreconditionFailed: 412,
    AccountAlreadyExists: 409,
    VersionConflict: 409,
    AccountIsClosed: 409,
    AccountNotEmpty: 409,
    TransfersPending: 409,
    TransferNotPending: 409,
    TransferAlreadyPending: 409,
}


def http_status(error: DomainError) -> int:
    """The status of ``error``'s type, or of the nearest base type listed."""
    for kind in type(error).__mro__:
        status = _STATUS.get(kind)
        if status is not None:
            return status
    return RULE_BROKEN


def title(code: str) -> str:
    return code.replace("-", " ").capitalize()


def refused(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    return problem(
        http_status(error), error.code, title(error.code), error.detail,
        **cast(Any, error.context),
    ).to_response(request)  # fmt: skip
