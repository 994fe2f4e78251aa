"""Composition root of the projector: settings, clients, the projector task and its HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from litestar import Litestar
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from projector.batch import BatchApplier
from projector.consumer import StreamConsumer
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from projector.projector import Projector
from projector.settings import ProjectorSettings
from shared_kernel.observability import configure_logging, health_routes, metrics
from shared_kernel.settings import load_settings


def create_app(settings: ProjectorSettings) -> Litestar:
    """The projector task plus /health/live, /health/ready and /metrics."""
    # The projector's own loop retries and logs; redis-py retrying underneath would hide
    # outages. The socket timeout must outlast a blocking XREADGROUP.
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=5,
        socket_timeout=settings.projector_block_ms / 1000 + 10,
        retry=Retry(NoBackoff(), 0),
    )
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=3,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        name="projector",
    )
    dead_letters = DeadLetters(redis, settings.dead_letter_stream)
    projector = Projector(
        settings,
        pool,
        StreamConsumer(
            redis,
            stream_name=settings.stream_name,
            group=settings.consumer_group,
            consumer=settings.consumer_name,
            batch_size=settings.projector_batch_size,
            block_ms=settings.projector_block_ms,
        ),
        BatchApplier(PROJECTIONS, dead_letters),
    )

    async def postgres() -> None:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")

    async def redis_ping() -> None:
        await redis.ping()

    async def projection() -> dict[str, int]:
        if projector.status.failing:
            raise RuntimeError(projector.status.failing)
        return {"checkpoint": projector.status.checkpoint}

    async def dead_lettered() -> int:
        """Parked events are visible here but do not make the projector unready."""
        return await dead_letters.count()

    @contextlib.asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=False)
        task = asyncio.create_task(projector.run(), name="projector")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.close()
            await redis.aclose()

    checks = {
        "postgres": postgres,
        "redis": redis_ping,
        "projector": projection,
        "dead_lettered": dead_lettered,
    }
    return Litestar(
        route_handlers=[*health_routes(checks), metrics],
        lifespan=[running],
        logging_config=None,  # configure_logging already set JSON lines up
    )


def main() -> None:
    settings = load_settings(ProjectorSettings)
    configure_logging("projector", settings.log_level)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.projector_port, log_config=None
    )
