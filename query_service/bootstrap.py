"""The query service's one composition root: settings in, a Litestar app out.

Nothing here connects at import time. ``build_app`` wires the objects; the
lifespan opens the pool and starts following the projection position when
the server starts, and closes them in reverse order when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsPlugin
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from query_service.projection_position import ProjectionPosition
from query_service.read_models import ReadModels
from query_service.read_your_writes import ReadYourWrites
from query_service.routes import QUERY_EXCEPTION_HANDLERS, AccountQueries, PageSize
from query_service.settings import QueryServiceSettings
from query_service.transfer_routes import (
    TRANSFER_EXCEPTION_HANDLERS,
    TotalsQueries,
    TransferQueries,
)
from shared_kernel.observability import health_routes, metrics
from shared_kernel.problems import EXCEPTION_HANDLERS, problem_details_config

#: Longest a readiness probe waits on one dependency before calling it failing.
_HEALTH_TIMEOUT_SECONDS = 2.0


def build_app(settings: QueryServiceSettings) -> Litestar:
    """The query service, wired to the database and Redis named in ``settings``."""
    pool = AsyncConnectionPool(
        settings.database_url,
        min_size=min(2, settings.postgres_pool_size),
        max_size=settings.postgres_pool_size,
        # Every read is one statement: autocommit spares a BEGIN/ROLLBACK per request.
        kwargs={"autocommit": True, "application_name": "query_service"},
        open=False,
        name="query_service",
    )
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=_HEALTH_TIMEOUT_SECONDS,
        socket_timeout=_HEALTH_TIMEOUT_SECONDS,
    )
    position = ProjectionPosition(
        settings.database_url, poll_interval=settings.projection_poll_seconds
    )
    read_your_writes = ReadYourWrites(
        ReadModels(pool), position, max_wait_seconds=settings.max_wait_seconds
    )

    async def postgres_answers() -> None:
        async with pool.connection(timeout=_HEALTH_TIMEOUT_SECONDS) as conn:
            await conn.execute("SELECT 1")

    async def redis_answers() -> None:
        await redis.ping()

    @asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        # wait=False: the process comes up even while PostgreSQL is down, and
        # /health/ready says so until it is back.
        await pool.open(wait=False)
        follower = asyncio.create_task(position.follow(), name="projection-position")
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await pool.close()
            await redis.aclose()

    return Litestar(
        route_handlers=[
            AccountQueries,
            TransferQueries,
            TotalsQueries,
            *health_routes(
                {
                    "postgres": postgres_answers,
                    "redis": redis_answers,
                    "projection_position": position.check,
                }
            ),
            metrics,
        ],
        dependencies={
            "read_models": Provide(read_your_writes.read_models),
            "page_size": Provide(PageSize(settings.page_size_max).resolve, sync_to_thread=False),
        },
        exception_handlers={
            **EXCEPTION_HANDLERS,
            **QUERY_EXCEPTION_HANDLERS,
            **TRANSFER_EXCEPTION_HANDLERS,
        },
        plugins=[ProblemDetailsPlugin(problem_details_config())],
        before_send=[read_your_writes.header_hook()],
        lifespan=[running],
        # configure_logging owns the log format (JSON lines); Litestar must not replace it.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="Ledger query service",
            version="0.1.0",
            description="Reads of the ledger's read models (accounts, statements, transfers,"
            " totals), with read-your-writes.",
            path="/schema",
        ),
    )
