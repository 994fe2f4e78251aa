"""Composition root of the transfer saga: settings, the event store, the saga task, HTTP.

The HTTP side only serves operations: ``/health/live``, ``/health/ready``
(PostgreSQL answers; the saga is active or standing by) and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from eventsourcing.persistence import PersistenceError
from litestar import Litestar
from psycopg_pool import AsyncConnectionPool

from command_service.event_store import LedgerEventStore, event_store_env
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga.saga import Role, TransferSaga
from command_service.transfer_saga.steps import TransferSteps
from shared_kernel.observability import configure_logging, health_routes, metrics
from shared_kernel.settings import load_settings


def create_app(settings: TransferSagaSettings) -> Litestar:
    """The saga task plus /health/live, /health/ready and /metrics."""
    store = LedgerEventStore(
        env=event_store_env(settings.database_url, pool_size=settings.postgres_pool_size)
    )
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=2,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        name="transfer-saga",
    )
    saga = TransferSaga(
        settings, pool, TransferSteps(store, snapshot_interval=settings.snapshot_interval)
    )

    async def postgres() -> None:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")

    async def leadership() -> str:
        if saga.status.role is Role.FAILING:
            raise RuntimeError(saga.status.last_error)
        return saga.status.role.value

    @contextlib.asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=False)
        task = asyncio.create_task(saga.run(), name="transfer-saga")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pool.close()
            await asyncio.to_thread(store.close)

    return Litestar(
        route_handlers=[*health_routes({"postgres": postgres, "saga": leadership}), metrics],
        lifespan=[running],
        logging_config=None,  # configure_logging already set JSON lines up
    )


def main() -> None:
    settings = load_settings(TransferSagaSettings)
    configure_logging("transfer_saga", settings.log_level)
    try:
        app = create_app(settings)
    except PersistenceError as error:  # the store's recorder connects when it is built
        print(
            f"transfer_saga: cannot use the event store at {settings.database_url}: {error}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.transfer_saga_port,
        log_config=None,
        access_log=False,
    )
