"""Request context, correlation ids and health checks shared by every process.

The log format and the masking of secrets live in :mod:`shared_kernel.logs`; the
names re-exported from it here are those the processes have always imported
from this module.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared_kernel import tracing
from shared_kernel.http_metrics import OPERATIONS_PATHS
from shared_kernel.ids import random_uuid
from shared_kernel.logs import (
    CORRELATION_ID,
    MASK,
    POSITION,
    configure_logging,
    log_context,
    mask_secrets,
    redacted_url,
)

__all__ = [  # the logging names are re-exported from shared_kernel.logs
    "CHECK_TIMEOUT_SECONDS",
    "CORRELATION_HEADER",
    "CORRELATION_ID",
    "CORRELATION_ID_PATTERN",
    "MASK",
    "POSITION",
    "HealthCheck",
    "RequestContext",
    "configure_logging",
    "correlation_id_of",
    "echo_correlation_id",
    "health_routes",
    "log_context",
    "mask_secrets",
    "redacted_url",
]


#: The header a request's correlation id travels in, and is echoed back in.
CORRELATION_HEADER = "X-Correlation-ID"
#: What a client may send as ``X-Correlation-ID`` (anything else is replaced, never echoed).
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:/+=@-]{1,100}$"
_CORRELATION_ID = re.compile(CORRELATION_ID_PATTERN)
#: Where a request's correlation id is kept in its ASGI scope state.
_CORRELATION_STATE_KEY = "correlation_id"


def correlation_id_of(scope: Scope) -> str:
    """The request's valid ``X-Correlation-ID``, else a new id; the same one all request long.

    Kept in the scope's state, so its log lines, its events and its response all
    carry the one id. An invalid id is refused by the route (422) and replaced
    here: the client's bytes are never echoed.
    """
    state = scope.setdefault("state", {})
    value = state.get(_CORRELATION_STATE_KEY)
    if value is None:
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-correlation-id"), None
        )
        value = given if given and _CORRELATION_ID.match(given) else random_uuid().hex
        state[_CORRELATION_STATE_KEY] = value
    return str(value)


async def echo_correlation_id(message: Message, scope: Scope) -> None:
    """``before_send`` hook: every response carries the request's ``X-Correlation-ID``.

    A hook rather than middleware: it also sees the answers litestar gives before
    routing (unknown path, wrong method).
    """
    if message["type"] == "http.response.start":
        echoed = (CORRELATION_HEADER.lower().encode(), correlation_id_of(scope).encode())
        message["headers"] = [*message.get("headers", ()), echoed]


class RequestContext(ASGIMiddleware):
    """Per request: its correlation id for the log lines and its route in its span's name.

    Runs after routing, so the tracing side can rename the server span that the
    OpenTelemetry ASGI middleware opened (by method only) after the route template.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["path"].startswith(OPERATIONS_PATHS):
            await next_app(scope, receive, send)
            return
        token = CORRELATION_ID.set(correlation_id_of(scope))
        if tracing.enabled():
            tracing.name_route_span(scope)
        try:
            await next_app(scope, receive, send)
        finally:
            CORRELATION_ID.reset(token)


#: A check raises when its dependency is unusable. It may return a value to show
#: in place of "ok" (a relay's "standby", a projector's dead-letter count).
HealthCheck = Callable[[], Awaitable[object]]
#: A check that has not answered by then is failing: a hung dependency (a stopped
#: Redis, a locked table) must make the probe say so, not make it hang.
CHECK_TIMEOUT_SECONDS = 2.5


async def _outcome(check: HealthCheck) -> tuple[bool, object]:
    try:
        outcome = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return False, f"failing: no answer within {CHECK_TIMEOUT_SECONDS}s"
    except Exception as error:  # a failing dependency is the answer, not a crash
        return False, f"failing: {type(error).__name__}: {mask_secrets(str(error))}"
    return True, "ok" if outcome is None else outcome


def health_routes(checks: Mapping[str, HealthCheck]) -> list[HTTPRouteHandler]:
    """``/health/live`` (the process answers) and ``/health/ready`` (its dependencies do).

    Each check raises when its dependency is unusable; ready answers 503 with
    the failing check's error so the operator sees which one and why. The
    checks run concurrently, each within :data:`CHECK_TIMEOUT_SECONDS`.
    """

    @get(
        "/health/live",
        include_in_schema=True,
        sync_to_thread=False,
        tags=["operations"],
        operation_id="live",
    )
    def live() -> dict[str, str]:
        return {"status": "live"}

    @get(
        "/health/ready",
        tags=["operations"],
        operation_id="ready",
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
                dict[str, Any], description="not ready: `checks` names the failing dependency"
            )
        },
    )
    async def ready() -> Response[dict[str, Any]]:
        outcomes = await asyncio.gather(*(_outcome(check) for check in checks.values()))
        results = {name: shown for name, (_, shown) in zip(checks, outcomes, strict=True)}
        healthy = all(ok for ok, _ in outcomes)
        return Response(
            {"status": "ready" if healthy else "not ready", "checks": results},
            status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE,
        )

    return [live, ready]
