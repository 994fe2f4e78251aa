"""Request context, metrics and health checks shared by every process.

The log format and the masking of secrets live in :mod:`shared_kernel.logs`; the
names re-exported from it here are those the processes have always imported
from this module.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

from shared_kernel import tracing
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
    "CORRELATION_ID",
    "CORRELATION_ID_PATTERN",
    "HTTP_RESPONSES",
    "MASK",
    "POSITION",
    "HealthCheck",
    "RequestContext",
    "configure_logging",
    "correlation_id_from_headers",
    "health_routes",
    "log_context",
    "mask_secrets",
    "metrics",
    "redacted_url",
]


#: What a client may send as ``X-Correlation-ID`` (anything else is replaced, never echoed).
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:/+=@-]{1,100}$"
_CORRELATION_ID = re.compile(CORRELATION_ID_PATTERN)


def correlation_id_from_headers(scope: Scope) -> str:
    """The request's valid ``X-Correlation-ID``, else a new id (for its log lines)."""
    given = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-correlation-id"), None
    )
    return given if given and _CORRELATION_ID.match(given) else uuid.uuid4().hex


#: Probes and scrapes: neither counted nor given a correlation id.
_OPERATIONS_PATHS = ("/health/", "/metrics")
HTTP_RESPONSES = Counter(
    "http_responses_total",
    "HTTP responses to routed requests (probes and scrapes excluded), by status code;"
    " 'none' when the connection ended before a response started.",
    ["code"],
)


_responses_by_status: dict[int, Any] = {}


def _count_response(status: int) -> None:
    counter = _responses_by_status.get(status)
    if counter is None:  # labels() costs a lock and a lookup: once per status code
        counter = HTTP_RESPONSES.labels(str(status) if status else "none")
        _responses_by_status[status] = counter
    counter.inc()


class RequestContext(ASGIMiddleware):
    """Per request: its correlation id for the log lines, its route in its span's name,
    and its status code in :data:`HTTP_RESPONSES`.

    Runs after routing, so the tracing side can rename the server span that the
    OpenTelemetry ASGI middleware opened (by method only) after the route template.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, correlation_id_of: Callable[[Scope], str] = correlation_id_from_headers):
        self._correlation_id_of = correlation_id_of

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["path"].startswith(_OPERATIONS_PATHS):
            await next_app(scope, receive, send)
            return
        token = CORRELATION_ID.set(self._correlation_id_of(scope))
        if tracing.enabled():
            tracing.name_route_span(scope)
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, sending)
        finally:
            CORRELATION_ID.reset(token)
            _count_response(status)


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

    @get("/health/live", include_in_schema=True, sync_to_thread=False, tags=["operations"])
    def live() -> dict[str, str]:
        return {"status": "live"}

    @get("/health/ready", tags=["operations"])
    async def ready() -> Response[dict[str, Any]]:
        outcomes = await asyncio.gather(*(_outcome(check) for check in checks.values()))
        results = {name: shown for name, (_, shown) in zip(checks, outcomes, strict=True)}
        healthy = all(ok for ok, _ in outcomes)
        return Response(
            {"status": "ready" if healthy else "not ready", "checks": results},
            status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE,
        )

    return [live, ready]


@get("/metrics", media_type=CONTENT_TYPE_LATEST, tags=["operations"], sync_to_thread=False)
def metrics() -> Response[bytes]:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
