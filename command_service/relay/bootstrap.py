"""Composition root of the relay: settings, clients, the relay task and its HTTP app."""

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

from command_service.relay.publisher import StreamPublisher
from command_service.relay.relay import OutboxRelay, Role
from command_service.settings import RelaySettings
from shared_kernel.observability import configure_logging, health_routes, metrics
from shared_kernel.settings import load_settings


def create_app(settings: RelaySettings) -> Litestar:
    """The relay task plus /health/live, /health/ready and /metrics."""
    # The relay's own loop retries and logs; redis-py retrying underneath would hide outages.
    redis = Redis.from_url(
        settings.redis_url, socket_connect_timeout=5, socket_timeout=10, retry=Retry(NoBackoff(), 0)
    )
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=2,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        name="relay",
    )
    relay = OutboxRelay(
        settings, pool, StreamPublisher(redis, settings.stream_name, settings.stream_max_length)
    )

    async def postgres() -> None:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")

    async def redis_ping() -> None:
        await redis.ping()

    async def leadership() -> str:
        if relay.status.role is Role.FAILING:
            raise RuntimeError(relay.status.last_error)
        return relay.status.role.value

    @contextlib.asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=False)
        task = asyncio.create_task(relay.run(), name="relay")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.close()
            await redis.aclose()

    checks = {"postgres": postgres, "redis": redis_ping, "relay": leadership}
    return Litestar(
        route_handlers=[*health_routes(checks), metrics],
        lifespan=[running],
        logging_config=None,  # configure_logging already set JSON lines up
    )


def main() -> None:
    settings = load_settings(RelaySettings)
    configure_logging("relay", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.relay_port, log_config=None)
