"""Composition root of the transfer saga: settings, the event store, the saga task, HTTP.

The HTTP side only serves operations: ``/health/live``, ``/health/ready``
(PostgreSQL answers; the saga is active or standing by) and ``/metrics``.
"""

from __future__ import annotations

import asyncio

from litestar import Litestar

from command_service.event_store import LedgerEventStore, build_or_exit, event_store_env
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga.saga import Role, TransferSaga
from command_service.transfer_saga.step_spans import steps_class
from shared_kernel.observability import configure_logging
from shared_kernel.tracing import setup_tracing
from shared_kernel.worker_app import background_worker_app, operations_pool, postgres_check, serve


def create_app(settings: TransferSagaSettings) -> Litestar:
    """The saga task plus /health/live, /health/ready and /metrics."""
    store = LedgerEventStore(
        env=event_store_env(settings.database_url, pool_size=settings.postgres_pool_size)
    )
    pool = operations_pool(settings.database_url, "transfer-saga")
    saga = TransferSaga(
        settings, pool, steps_class()(store, snapshot_interval=settings.snapshot_interval)
    )

    async def leadership() -> str:
        if saga.status.role is Role.FAILING:
            raise RuntimeError(saga.status.last_error)
        return saga.status.role.value

    async def close_store() -> None:
        await asyncio.to_thread(store.close)

    checks = {"postgres": postgres_check(pool), "saga": leadership}
    return background_worker_app(
        "transfer-saga", saga.run, checks, pool=pool, on_close=[close_store]
    )


def main(settings: TransferSagaSettings) -> None:
    """Serve the transfer saga; ``settings`` were checked by ``shared_kernel.startup``."""
    configure_logging("transfer_saga", settings.log_level, settings.log_format)
    setup_tracing("transfer_saga")
    app = build_or_exit("transfer_saga", settings.database_url, lambda: create_app(settings))
    serve(app, settings.host, settings.transfer_saga_port, access_log=False)
