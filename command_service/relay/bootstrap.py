"""Composition root of the relay: settings, clients, the relay task and its HTTP app."""

from __future__ import annotations

from litestar import Litestar
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from command_service.relay.publish_spans import publisher_class
from command_service.relay.relay import OutboxRelay, Role
from command_service.settings import RelaySettings
from shared_kernel.observability import configure_logging
from shared_kernel.redis_connection import connect_redis
from shared_kernel.tracing import setup_tracing
from shared_kernel.worker_app import (
    background_worker_app,
    operations_pool,
    postgres_check,
    redis_check,
    serve,
)


def create_app(settings: RelaySettings) -> Litestar:
    """The relay task plus /health/live, /health/ready and /metrics."""
    # The relay's own loop retries and logs; redis-py retrying underneath would hide outages.
    # No socket timeout: redis-py would arm one timer per reply, a quarter of the relay's
    # CPU with a thousand replies a batch; the publisher bounds each whole batch instead.
    redis = connect_redis(
        settings.redis_url, cluster=settings.redis_cluster, socket_connect_timeout=5,
        socket_timeout=None, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip
    pool = operations_pool(settings.database_url, "relay")
    publisher = publisher_class()(
        redis, settings.stream_name, settings.stream_max_length, settings.stream_partitions
    )
    relay = OutboxRelay(settings, pool, publisher)

    async def leadership() -> str:
        if relay.status.role is Role.FAILING:
            raise RuntimeError(relay.status.last_error)
        return relay.status.role.value

    checks = {"postgres": postgres_check(pool), "redis": redis_check(redis), "relay": leadership}
    return background_worker_app("relay", relay.run, checks, pool=pool, on_close=[redis.aclose])


def main(settings: RelaySettings) -> None:
    """Serve the relay; ``settings`` were checked by ``shared_kernel.startup``."""
    configure_logging("relay", settings.log_level, settings.log_format)
    setup_tracing("relay")
    serve(create_app(settings), settings.host, settings.relay_port)
