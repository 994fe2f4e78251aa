"""The HTTP shell of a background worker (relay, transfer saga, projector).

Each worker is one long-running task plus an operations-only HTTP app:
``/health/live``, ``/health/ready`` and ``/metrics``. This module builds that app
so each bootstrap only says what its task is, what its readiness checks are and
what to close when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import uvicorn
from litestar import Litestar
from litestar.types import ControllerRouterHandler
from psycopg_pool import AsyncConnectionPool

from shared_kernel import tracing
from shared_kernel.heap import keep_startup_heap
from shared_kernel.http_metrics import count_response, metrics
from shared_kernel.observability import (
    HealthCheck,
    RequestContext,
    echo_correlation_id,
    health_routes,
)
from shared_kernel.one_write_answers import OneWriteAnswers
from shared_kernel.pools import postgres_pool
from shared_kernel.redis_connection import RedisClient


def operations_pool(
    url: str, name: str, *, max_size: int = 2, generic_plans: bool = False
) -> AsyncConnectionPool[Any]:
    """A small pool a worker's loop and health checks share; opened by the app."""
    return postgres_pool(url, name, max_size=max_size, generic_plans=generic_plans)


def postgres_check(pool: AsyncConnectionPool[Any], *, timeout: float = 2.0) -> HealthCheck:
    """A readiness check: a connection of ``pool`` answers ``SELECT 1`` within ``timeout``."""

    async def postgres() -> None:
        async with pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")

    return postgres


def redis_check(redis: RedisClient) -> HealthCheck:
    """A readiness check: Redis answers PING."""

    async def redis_ping() -> None:
        await redis.ping()

    return redis_ping


def background_lifespan(
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    pool: AsyncConnectionPool[Any],
    on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    more_pools: Sequence[AsyncConnectionPool[Any]] = (),
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan that runs ``work()`` as task ``name`` for as long as the app serves.

    On start it opens ``pool`` and ``more_pools`` (without waiting, so a PostgreSQL
    outage shows on /health/ready rather than preventing the start) and starts the
    task; on stop it cancels the task, closes the pools and then calls each of
    ``on_close`` in order.
    """

    @contextlib.asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        for each in (pool, *more_pools):
            await each.open(wait=False)
        task = asyncio.create_task(work(), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for each in (pool, *more_pools):
                await each.close()
            for close in on_close:
                await close()

    return running


def background_worker_app(
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    checks: Mapping[str, HealthCheck],
    *,
    pool: AsyncConnectionPool[Any],
    on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    routes: Sequence[ControllerRouterHandler] = (),
    **options: Any,
) -> Litestar:
    """The app of a worker: :func:`background_lifespan` plus health, metrics and ``routes``;
    ``options`` go to ``Litestar`` (its OpenAPI document, say)."""
    return Litestar(
        route_handlers=[*health_routes(checks), metrics, *routes],
        lifespan=[background_lifespan(name, work, pool=pool, on_close=on_close)],
        middleware=[RequestContext()],
        before_send=[count_response, echo_correlation_id],
        plugins=tracing.asgi_plugins(),  # none unless tracing is on
        logging_config=None,  # configure_logging already set JSON lines up
        **options,
    )


def serve(app: Litestar, host: str, port: int, **options: Any) -> None:
    """Serve ``app`` with uvicorn, its logging left to ``configure_logging``.

    No proxy-header rewriting: nothing here reads the client's address or scheme
    (``Location`` comes from settings), so that layer would only cost every request.
    The heap built so far is frozen (:mod:`shared_kernel.heap`); each answer leaves in
    one write (:mod:`shared_kernel.one_write_answers`).
    """
    keep_startup_heap()
    uvicorn.run(
        app, host=host, port=port, log_config=None, proxy_headers=False, http=OneWriteAnswers,
        **options,
    )  # fmt: skip
