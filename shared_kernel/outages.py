"""Outages of PostgreSQL or Redis reaching a route: a 503 problem with Retry-After, never a 500.

A connection refused, a backend ended, a pool that had no connection within
its bounded wait (``PoolTimeout``), a Redis that does not answer: none is the
client's fault, and a retry a moment later may well succeed. Each HTTP app
registers :func:`outage_handlers` once, so no route needs to catch them.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import redis.exceptions
from litestar import Request, Response
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from shared_kernel.observability import mask_secrets
from shared_kernel.problems import problem

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after an outage answer.
RETRY_AFTER_SECONDS = 1

#: What an outage of a dependency looks like when it reaches a route.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def unavailable(
    request: Request[Any, Any, Any], code: str, title: str, detail: str = ""
) -> Response[Any]:
    """The 503 problem document of an outage, with Retry-After."""
    return problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        code,
        title,
        detail or "Retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    ).to_response(request)


def outage_handlers(
    code: str, title: str, *more: type[Exception]
) -> dict[type[Exception] | int, Any]:
    """Exception handlers answering :data:`OUTAGE_ERRORS` (and ``more``) as 503 ``code``."""

    def handle(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        # The operator's view: which route met which outage (the client gets no internals).
        log.warning(
            "dependency unavailable",
            extra={
                "method": request.method,
                "path": request.url.path,
                "error_type": type(error).__name__,
                "error": mask_secrets(str(error)),
            },
        )
        return unavailable(request, code, title)

    return dict.fromkeys((*OUTAGE_ERRORS, *more), handle)
