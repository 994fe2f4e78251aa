"""Logs, the request context and health checks shared by every process.

Logs are one JSON object per line, so an operator can grep or ship them
without parsing prose: ``time``, ``level``, ``process``, ``message``,
``trace_id`` and ``span_id`` of the current span (null when tracing is off or
no span is current), ``correlation_id`` (the request's or the batch's, from a
context variable set by :func:`log_context`, null when none), ``position``
when the line is about an event, and any ``extra`` fields. The level comes
from ``LOG_LEVEL``. Secrets stay out: a URL's password, a bearer token and
fields named like ``password`` or ``authorization`` are masked, and no code
logs a request body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared_kernel import tracing
from shared_kernel.http_metrics import OPERATIONS_PATHS

#: Record attributes that are not extra context (uvicorn adds an ANSI-coloured copy
#: of its message, which would only be noise in a JSON line).
_IGNORED_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"color_message"}
#: Fields every line has, in this order, after the record's own.
_CONTEXT_FIELDS = ("trace_id", "span_id", "correlation_id")
#: Extra fields whose values are never written, whatever they hold.
_SECRET_FIELD = re.compile(r"pass(word)?|secret|token|authorization|cookie|api_key", re.I)
#: ``scheme://user:password@host`` and ``Bearer <token>`` inside any text.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s\"]*:)[^@/\s\"]+@", re.I)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
MASK = "***"

#: The correlation id of the request or batch being handled (None outside one).
CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)
#: The log position of the event being handled (None when no single event is).
POSITION: ContextVar[int | None] = ContextVar("position", default=None)


@contextmanager
def log_context(
    *, correlation_id: str | None = None, position: int | None = None
) -> Iterator[None]:
    """Every line logged inside carries ``correlation_id`` and ``position`` (if given)."""
    correlation = CORRELATION_ID.set(correlation_id) if correlation_id is not None else None
    at = POSITION.set(position) if position is not None else None
    try:
        yield
    finally:
        if at is not None:
            POSITION.reset(at)
        if correlation is not None:
            CORRELATION_ID.reset(correlation)


def mask_secrets(text: str) -> str:
    """``text`` with URL passwords and bearer tokens replaced by ``***``."""
    if "@" in text:
        text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    if "earer" in text:
        text = _BEARER.sub(rf"\g<head>{MASK}", text)
    return text


def redacted_url(url: str) -> str:
    """``url`` without its password, for messages that must name a server."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{netloc[-1]}"))


class ContextFilter(logging.Filter):
    """Adds the current span's ids and the context's correlation id and position to a record.

    A value the call gave in ``extra`` wins. Span ids are looked up only when
    tracing is on; otherwise they are null at the cost of one boolean test.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = vars(record)
        if "trace_id" not in fields:
            ids = tracing.current_ids() if tracing.enabled() else None
            record.trace_id, record.span_id = ids if ids is not None else (None, None)
        if fields.get("correlation_id") is None:
            record.correlation_id = CORRELATION_ID.get()
        if "position" not in fields:
            position = POSITION.get()
            if position is not None:
                record.position = position
        return True


class JsonLineFormatter(logging.Formatter):
    """Formats each record as one JSON object on one line."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        fields = vars(record)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "process": self.process_name,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT_FIELDS:
            line[key] = fields.get(key)
        for key, value in fields.items():
            if key not in _IGNORED_FIELDS and not key.startswith("_") and key not in line:
                line[key] = MASK if _SECRET_FIELD.search(key) else value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return mask_secrets(json.dumps(line, default=str))


def configure_logging(process_name: str, level: str) -> None:
    """Send JSON lines to stderr at ``level`` for this process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter(process_name))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs of every request would drown the signal; errors still show.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


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
        value = given if given and _CORRELATION_ID.match(given) else uuid.uuid4().hex
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
