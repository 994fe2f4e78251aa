"""The composition root of the command service: the one place that builds things.

Nothing connects at import time. :func:`build_app` creates the event store
(its pool opens lazily), the command bus (its writer thread starts with the app
and drains on shutdown), the psycopg pool of the idempotency keys (and their
periodic purge), the Redis client used by the readiness check, and the
litestar application around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from litestar import Litestar

from command_service import metrics
from command_service.bus.bus import CommandBus
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.http.app import create_app
from command_service.idempotency.keys import IdempotencyKeys
from command_service.settings import CommandServiceSettings
from shared_kernel.event_log import head_position
from shared_kernel.pools import postgres_pool
from shared_kernel.redis_connection import connect_redis
from shared_kernel.worker_app import redis_check

log = logging.getLogger(__name__)

#: Readiness must answer fast when a dependency hangs, not after a TCP timeout.
READY_TIMEOUT_SECONDS = 2


def build_app(settings: CommandServiceSettings) -> Litestar:
    store = LedgerEventStore(
        env=event_store_env(settings.database_url, pool_size=settings.postgres_pool_size)
    )
    bus = CommandBus(
        store,
        batch_max_commands=settings.batch_max_commands,
        append_retries=settings.append_retries,
        snapshot_interval=settings.snapshot_interval,
        cache_size=settings.aggregate_cache_size,
        settle_seconds=settings.commit_settle_seconds,
    )
    metrics.APPEND_BACKLOG.set_function(lambda: bus.backlog)
    pool = postgres_pool(
        settings.database_url, "command-service", max_size=settings.postgres_pool_size
    )
    keys = IdempotencyKeys(
        pool,
        ttl_seconds=settings.idempotency_ttl_seconds,
        lease_seconds=settings.idempotency_lease_seconds,
    )
    purging: list[asyncio.Task[None]] = []

    async def purge_expired_keys() -> None:
        while True:
            await asyncio.sleep(settings.idempotency_purge_seconds)
            try:
                purged = await keys.purge()
            except Exception:  # an outage; the next round tries again
                log.exception("purging expired idempotency keys failed")
                continue
            metrics.IDEMPOTENCY_KEYS_PURGED.inc(purged)
            if purged:
                log.info("purged expired idempotency keys", extra={"purged": purged})
    redis_client = connect_redis(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_timeout=READY_TIMEOUT_SECONDS,
        socket_connect_timeout=READY_TIMEOUT_SECONDS,
    )

    async def postgres_ready() -> None:
        # A real query on the events table: reachable, migrated, readable.
        async with await psycopg.AsyncConnection.connect(
            settings.database_url, connect_timeout=READY_TIMEOUT_SECONDS
        ) as conn:
            await head_position(conn)

    async def writer_progress() -> None:
        # Commands waiting on a writer that finishes nothing: let an orchestrator restart us.
        bus.check_progress(settings.writer_stall_seconds)

    async def start() -> None:
        await pool.open(wait=False)
        purging.append(asyncio.create_task(purge_expired_keys(), name="idempotency-purge"))
        bus.start()
        log.info(
            "command service started",
            extra={
                "port": settings.command_service_port,
                "batch_max_commands": settings.batch_max_commands,
                "snapshot_interval": settings.snapshot_interval,
            },
        )

    async def stop() -> None:
        # Answer every command already queued before the store closes.
        await asyncio.to_thread(bus.stop)
        for task in purging:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await pool.close()
        await asyncio.to_thread(store.close)
        await redis_client.aclose()

    return create_app(
        bus,
        idempotency_keys=keys,
        idempotency_wait_seconds=settings.idempotency_wait_seconds,
        health_checks={
            "postgres": postgres_ready,
            "redis": redis_check(redis_client),
            "writer": writer_progress,
        },
        max_body_bytes=settings.max_body_bytes,
        query_service_url=str(settings.query_service_public_url),
        on_startup=[start],
        on_shutdown=[stop],
    )
