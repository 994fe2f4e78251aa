"""Composition root of the projector: settings, clients, the projector task and its HTTP app."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar import Litestar
from litestar.types import ControllerRouterHandler
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from projector.admin import ProjectionAdmin
from projector.admin_contract import ADMIN_CONTRACT, ADMIN_SCHEMES
from projector.apply_spans import applier_class
from projector.consumer import StreamConsumer
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from projector.projector import Projector
from projector.replica import ProjectorReplica, partition_body, worker_failures
from projector.settings import ProjectorSettings
from projector.stall import StallWatch, advancing_check
from shared_kernel.observability import configure_logging
from shared_kernel.openapi_contract import http_options
from shared_kernel.partitions import dead_letter_stream
from shared_kernel.redis_connection import connect_redis
from shared_kernel.tracing import setup_tracing
from shared_kernel.worker_app import (
    background_worker_app,
    operations_pool,
    postgres_check,
    redis_check,
    serve,
)


def create_app(
    settings: ProjectorSettings, routes: Sequence[ControllerRouterHandler] = ()
) -> Litestar:
    """The projector task plus /health/live, /health/ready, /metrics and ``routes``."""
    # The projector's own loop retries and logs; redis-py retrying underneath would hide
    # outages. The socket timeout must outlast a blocking XREADGROUP.
    redis = connect_redis(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_connect_timeout=5,
        socket_timeout=settings.projector_block_ms / 1000 + 10,
        retry=Retry(NoBackoff(), 0),
    )
    # One connection per partition held (a batch each) plus the checks' and lag reads'.
    # Generic plans: a batch reads its rows by arrays of stream ids (see GENERIC_PLANS).
    pool = operations_pool(
        settings.database_url, "projector", max_size=max(3, settings.stream_partitions + 2),
        generic_plans=True,
    )
    streams = settings.partition_streams
    dead_letters = [DeadLetters(redis, dead_letter_stream(stream)) for stream in streams]

    def partition_projector(partition: int, report: Callable[[], None]) -> Projector:
        consumer = StreamConsumer(
            redis,
            stream_name=streams[partition],
            group=settings.consumer_group,
            consumer=settings.consumer_name,
            batch_size=settings.projector_batch_size,
            block_ms=settings.projector_block_ms,
        )
        applier = applier_class()(
            PROJECTIONS, dead_letters[partition],
            partition=partition, partitions=settings.stream_partitions,
        )  # fmt: skip
        return Projector(settings, pool, consumer, applier, report=report)

    replica = ProjectorReplica(
        settings.database_url,
        settings.stream_name,
        settings.stream_partitions,
        partition_projector,
        balance_seconds=settings.partition_balance_seconds,
    )

    async def projection() -> dict[str, Any]:
        if failures := worker_failures(replica):
            raise RuntimeError("; ".join(failures))
        return {"checkpoint": replica.checkpoint, **partition_body(replica)}

    async def dead_lettered() -> int:
        """Parked events are visible here but do not make the projector unready."""
        return sum([await parked.count() for parked in dead_letters])

    async def blocked_streams() -> dict[str, int]:
        """Streams held back per projection; like dead letters, shown without making it unready
        (the projector still advances; the query service answers 503 for what they touch)."""
        statuses = list(replica.statuses.values())
        return statuses[0].blocked if statuses else {}

    checks = {
        "postgres": postgres_check(pool),
        "redis": redis_check(redis),
        "projector": projection,
        "advancing": advancing_check(
            pool, lambda: replica.checkpoint, StallWatch(settings.projector_stall_seconds)
        ),
        "dead_lettered": dead_lettered,
        "blocked_streams": blocked_streams,
    }
    # Rebuilds, the start-up version check and the retention of replaced tables.
    admin = ProjectionAdmin(settings)
    return background_worker_app(
        "projector",
        admin.alongside(replica.run),
        checks,
        pool=pool,
        on_close=[redis.aclose],
        routes=[*routes, *admin.routes()],
        **http_options(
            "Ledger projector",
            "Health and metrics of the projector, and its admin routes: the status of every"
            " projection, and rebuilding one beside the live tables while everything runs."
            " /admin/... needs the bearer ADMIN_TOKEN.",
            ADMIN_CONTRACT,
            security_schemes=ADMIN_SCHEMES,
        ),
    )


def main(settings: ProjectorSettings) -> None:
    """Serve the projector; ``settings`` were checked by ``shared_kernel.startup``."""
    configure_logging("projector", settings.log_level, settings.log_format)
    setup_tracing("projector")
    serve(create_app(settings), settings.host, settings.projector_port)
