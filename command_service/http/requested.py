"""A command built from an HTTP request: the route's arguments plus what every request gives.

Every command takes its id and ``recovering`` from the request's idempotent
attempt (:mod:`command_service.idempotency`) and its correlation id from
``X-Correlation-ID`` (or a generated one); the routes name only the rest.
"""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Request

from command_service.commands import Command
from command_service.http.headers import correlation_id
from command_service.idempotency.middleware import IdempotentAttempt, attempt_of

C = TypeVar("C", bound=Command[Any])


def requested(
    kind: type[C],
    request: Request[Any, Any, Any],
    x_correlation_id: str | None,
    *,
    attempt: IdempotentAttempt | None = None,
    **arguments: Any,
) -> C:
    """``kind(**arguments)`` as ``request`` asked for it; ``attempt`` when the route read it
    already (without an idempotency key each read makes a new command id)."""
    attempt = attempt or attempt_of(request)
    return kind(
        command_id=attempt.command_id,
        recovering=attempt.recovering,
        correlation_id=correlation_id(request, x_correlation_id),
        **arguments,
    )
