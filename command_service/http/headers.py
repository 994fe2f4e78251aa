"""The headers the command service reads and writes: If-Match, ETag, X-Correlation-ID."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.params import Parameter
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY
from litestar.types import Message, Scope

from shared_kernel.problems import problem

CORRELATION_HEADER = "X-Correlation-ID"
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:/+=@-]{1,100}$"
_CORRELATION_ID = re.compile(CORRELATION_ID_PATTERN)
#: Where a request's correlation id is kept in its ASGI scope state.
_STATE_KEY = "correlation_id"
#: A version as an entity tag: ``3``, ``"3"`` or ``W/"3"`` (weak tags compare equal here).
_VERSION_TAG = re.compile(r'^(?:W/)?(?:"(\d{1,18})"|(\d{1,18}))$')


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header expects; None when absent or ``*`` (any version)."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _VERSION_TAG.match(if_match.strip())
    if match is None:
        raise problem(
            HTTP_422_UNPROCESSABLE_ENTITY,
            "validation-failed",
            "The If-Match header is not a version",
            'If-Match must be an account version, like 3, "3" or W/"3".',
            errors=[{"source": "header", "key": "If-Match", "message": "not a version"}],
        )
    return int(match.group(1) or match.group(2))


IfMatch = Annotated[
    str | None,
    Parameter(
        header="If-Match",
        required=False,
        description='Expected account version (3, "3" or W/"3"): 409 when the account moved on.',
    ),
]


CorrelationIdHeader = Annotated[
    str | None,
    Parameter(
        header=CORRELATION_HEADER,
        required=False,
        pattern=CORRELATION_ID_PATTERN,
        max_length=100,
        description="Ties together everything one request causes; generated when absent.",
    ),
]


def correlation_id(request: Request[Any, Any, Any], given: str | None) -> str:
    """The request's correlation id: the client's (litestar validated it) or a generated one.

    A plain function, not a litestar dependency: two dependencies are resolved
    in an anyio task group, which costs more than the whole handler.
    """
    return given or _correlation_id_of(request.scope)


def correlation_id_of(scope: Scope) -> str:
    """The request's correlation id from its ASGI scope (for the log context)."""
    return _correlation_id_of(scope)


def _correlation_id_of(scope: Scope) -> str:
    """The client's id when valid, else one generated once per request (kept in the scope)."""
    state = scope.setdefault("state", {})
    value = state.get(_STATE_KEY)
    if value is None:
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-correlation-id"), None
        )
        # An invalid id is refused by the handler (422); never echo the client's bytes then.
        value = given if given and _CORRELATION_ID.match(given) else uuid.uuid4().hex
        state[_STATE_KEY] = value
    return str(value)


async def echo_correlation_id(message: Message, scope: Scope) -> None:
    """``before_send`` hook: every response carries the id, errors and unrouted paths included."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[CORRELATION_HEADER] = _correlation_id_of(scope)
