"""Outages of PostgreSQL or Redis: retried by workers, a 503 with Retry-After on a route.

Workers retry :data:`OUTAGES` with backoff and never dead-letter or give up
on them. On a route, a connection refused, a backend ended, a pool that had no connection within
its bounded wait (``PoolTimeout``), a Redis that does not answer: none is the
client's fault, and a retry a moment later may well succeed. Each HTTP app
registers :func:`outage_handlers` once, so no route needs to catch them.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import Request, Response
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared_kernel.observability import mask_secrets
from shared_kernel.problems import problem

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying after an outage answer.
RETRY_AFTER_SECONDS = 1

#: Failures of a dependency rather than a bug or bad data.
OUTAGES: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout
    psycopg.InterfaceError,
    # A role missing a grant (a misconfigured deployment, a table swapped in by the wrong
    # role) is for an operator to fix; the data is fine, so retry rather than dead-letter.
    psycopg.errors.InsufficientPrivilege,
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
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
    """Exception handlers answering :data:`OUTAGES` (and ``more``) as 503 ``code``."""

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

    return dict.fromkeys((*OUTAGES, *more), handle)
