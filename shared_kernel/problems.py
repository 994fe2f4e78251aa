"""RFC 9457 problem documents with stable, machine-readable codes.

Every error a client can cause leaves a service as ``application/problem+json``
whose ``type`` is ``urn:ledger:problem:<code>`` and which repeats the ``code``
as a member, so clients branch on a stable string rather than on prose. Each
``type`` has one ``title`` (:data:`TITLES`; what varies goes in ``detail``),
and ``instance`` is the path of the request that met the problem.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

if TYPE_CHECKING:
    from litestar._kwargs import KwargsModel

log = logging.getLogger(__name__)

#: The route handler ``opt`` key caching its parameters' wire names.
_WIRE_NAMES = "ledger.wire_names"

_CODES_BY_STATUS = {
    HTTP_400_BAD_REQUEST: "bad-request",
    HTTP_404_NOT_FOUND: "not-found",
    HTTP_405_METHOD_NOT_ALLOWED: "method-not-allowed",
    HTTP_413_REQUEST_ENTITY_TOO_LARGE: "body-too-large",
    HTTP_422_UNPROCESSABLE_ENTITY: "validation-failed",
}


#: The one title of each problem type. A code not listed here keeps the title its
#: raiser gives (codes derived from domain errors have one title by construction).
TITLES = {
    "bad-request": "The request could not be parsed",
    "not-found": "Nothing is found at this path",
    "method-not-allowed": "This method is not allowed on this path",
    "body-too-large": "The request body is too large",
    "validation-failed": "The request is not valid",
    "malformed-json": "The request body is not valid JSON",
    "http-error": "The request failed",
    "internal-error": "The server failed to handle the request",
}


class Problem(ProblemDetailsException):
    """A problem document whose ``instance`` is the request's path unless given."""

    def to_response(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        if self.instance is None:
            self.instance = request.url.path
        return super().to_response(request)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemDetailsException:
    """A problem document with a stable ``code``; ``extra`` adds members.

    ``title`` is used only for a code :data:`TITLES` does not name; otherwise it
    becomes the ``detail`` when none is given.
    """
    return Problem(
        status_code=status,
        type_=f"urn:ledger:problem:{code}",
        title=TITLES.get(code, title),
        detail=detail or title,
        headers=headers,
        extra={"code": code, **extra},
    )


def renamed_parameters(model: KwargsModel) -> dict[str, tuple[str, str]]:
    """Per Python name of a header, query or cookie parameter of ``model`` (dependencies
    included) that the client sends under another name: that wire name and its source."""
    return {
        parameter.field_name: (parameter.field_alias, parameter.param_type.value)
        for parameters in (
            model.expected_header_params,
            model.expected_query_params,
            model.expected_cookie_params,
        )
        for parameter in parameters
        if parameter.field_alias != parameter.field_name
    }


def _wire_names(request: Request[Any, Any, Any]) -> dict[str, tuple[str, str]]:
    """:func:`renamed_parameters` of the request's route, from the model litestar built for it.

    Litestar names a failing header or query parameter by the handler's Python
    argument (``x_min_position``); a client only knows the name it sent.
    """
    handler = request.scope.get("route_handler")
    if not isinstance(handler, BaseRouteHandler):
        return {}
    cached: dict[str, tuple[str, str]] | None = handler.opt.get(_WIRE_NAMES)
    if cached is None:
        cached = {}
        for route in request.app.routes:
            found = getattr(route, "route_handler_map", {}).get(request.method)
            if found is not None and found[0] is handler:
                cached = renamed_parameters(found[1])
                break
        handler.opt[_WIRE_NAMES] = cached
    return cached


def _on_the_wire(error: Any, names: dict[str, tuple[str, str]]) -> Any:
    """``error`` naming the parameter as the client sent it."""
    if not isinstance(error, dict) or error.get("source") == "body":
        return error
    wire = names.get(str(error.get("key")))
    if wire is None:
        return error
    return {**error, "key": wire[0], "source": wire[1]}


def _validation_to_problem(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    # Litestar answers 400 for a body or parameter that does not validate; the
    # contract says 422, with each failing field listed by the name the client sent.
    errors = exc.extra if isinstance(exc.extra, list) else []
    if errors:
        names = _wire_names(request)
        errors = [_on_the_wire(error, names) for error in errors]
    return problem(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "validation-failed",
        "The request is not valid",
        str(exc.detail),
        errors=errors,
    ).to_response(request)


def _http_to_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = _CODES_BY_STATUS.get(exc.status_code, "http-error")
    return problem(
        exc.status_code, code, TITLES.get(code, "The request failed"), str(exc.detail),
        headers=exc.headers,
    ).to_response(request)


def _unexpected_to_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal-error",
        "The server failed to handle the request",
        "The error is logged; retrying later may succeed.",
    ).to_response(request)


def problem_details_config() -> ProblemDetailsConfig:
    """Configuration for litestar's ProblemDetailsPlugin."""
    return ProblemDetailsConfig(enable_for_all_http_exceptions=False)


#: Exception handlers for ``Litestar(exception_handlers=...)``.
EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ValidationException: _validation_to_problem,
    NotFoundException: _http_to_problem,
    MethodNotAllowedException: _http_to_problem,
    HTTPException: _http_to_problem,
    HTTP_500_INTERNAL_SERVER_ERROR: _unexpected_to_problem,
}
