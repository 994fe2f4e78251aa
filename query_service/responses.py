"""What every query route shares: its problem documents, response specs and parameters.

Validation the type system cannot express here (the configured page size
limit, cursors) ends in a 422 problem document; a blocked stream in a 503;
an outage of PostgreSQL in a 503 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import (
    HTTP_304_NOT_MODIFIED,
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_412_PRECONDITION_FAILED,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from query_service.blocked_streams import ReadModelBlocked, read_model_blocked
from query_service.conditional import NOT_MODIFIED
from query_service.cursors import MAX_CURSOR_LENGTH, InvalidCursor
from query_service.errors import NotProjected
from query_service.query_bus import Ask
from shared_kernel import openapi_contract
from shared_kernel.outages import outage_handlers
from shared_kernel.problems import problem

DEFAULT_PAGE_SIZE = 50
#: Owners are 1..200 characters when an account is opened (command side).
OWNER_MAX_LENGTH = 200

CursorParam = Annotated[
    str | None,
    Parameter(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="next_cursor of the previous page; omit for the first page.",
    ),
]


def page_size(maximum: int) -> Callable[..., int]:
    """Litestar dependency ``page_size``: the ``limit`` asked for, 1 to ``maximum``."""

    def resolve(ask: Ask, limit: int | None = None) -> int:
        return min(DEFAULT_PAGE_SIZE, maximum) if limit is None else limit

    # The bound is a setting: litestar validates and documents it from the signature.
    # ``ask`` is not used: naming it orders the two dependencies of a listing. Two
    # independent ones are resolved concurrently, in an anyio task group of two tasks
    # per request (about a tenth of a listing's CPU); ordered, each is awaited inline.
    resolve.__annotations__ = {
        "ask": NamedDependency[Ask],
        "limit": Annotated[
            int | None,
            Parameter(
                ge=1, le=maximum, description=f"Items per page (default 50, at most {maximum})."
            ),
        ],
        "return": int,
    }
    return resolve


class ProblemDocument(openapi_contract.ProblemDocument):
    """The shape of this service's RFC 9457 answers (for the OpenAPI document)."""

    account_id: str | None = None
    transfer_id: str | None = None
    owner: str | None = None
    min_position: int | None = None
    projection_position: int | None = None
    blocked: list[dict[str, Any]] | None = None


def problem_spec(description: str) -> ResponseSpec:
    return openapi_contract.problem_response(description, ProblemDocument)


READ_RESPONSES = {
    # Litestar documents a 400 for every handler with parameters; here it only
    # happens for a request that cannot be parsed at all, as a problem document.
    HTTP_400_BAD_REQUEST: problem_spec("bad-request: the request could not be parsed"),
    HTTP_412_PRECONDITION_FAILED: problem_spec(
        "projection-behind: min_position not reached within max_wait_seconds (see Retry-After)"
    ),
    HTTP_422_UNPROCESSABLE_ENTITY: problem_spec(
        "validation-failed or invalid-cursor: a parameter or header is not valid"
    ),
    HTTP_503_SERVICE_UNAVAILABLE: problem_spec(
        "read-models-unavailable: retry later; or read-model-blocked: what this read shows"
        " includes a stream the projector holds back after refusing one of its events (`blocked`"
        " names them) until an operator replays it"
    ),
}


def not_found_responses(description: str) -> dict[int, ResponseSpec]:
    """The responses of a read of one resource by key, whose 404 ``description`` names."""
    return {**READ_RESPONSES, HTTP_404_NOT_FOUND: problem_spec(description)}


#: The reads of one versioned resource: an ETag, and 304 for If-None-Match.
CONDITIONAL_RESPONSES = {HTTP_304_NOT_MODIFIED: NOT_MODIFIED}


def _not_projected(request: Request[Any, Any, Any], exc: NotProjected) -> Response[Any]:
    key: dict[str, Any] = dict(exc.fields)  # the key's name and value, e.g. account_id
    return problem(
        HTTP_404_NOT_FOUND, f"{exc.kind}-not-found", exc.title, exc.detail, **key
    ).to_response(request)


def _invalid_cursor(request: Request[Any, Any, Any], exc: InvalidCursor) -> Response[Any]:
    return problem(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "invalid-cursor",
        "The cursor is not valid for this query",
        str(exc),
    ).to_response(request)


#: Exception handlers every query route shares, beside ``shared_kernel.problems``'s.
QUERY_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    NotProjected: _not_projected,
    ReadModelBlocked: read_model_blocked,
    InvalidCursor: _invalid_cursor,
    **outage_handlers("read-models-unavailable", "The read models cannot be reached right now"),
}

