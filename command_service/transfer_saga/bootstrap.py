"""Composition root of the transfer saga: settings, the event store, the saga task, HTTP.

The HTTP side only serves operations: ``/health/live``, ``/health/ready``
(PostgreSQL answers; the saga is active or standing by) and ``/metrics``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from litestar import Litestar

from command_service.deadlines.runner import DeadlineRunner
from command_service.event_store import LedgerEventStore, build_or_exit, event_store_env
from command_service.leader_loop import LeaderLoop
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga.saga import OUTAGES, Role, TransferSaga
from command_service.transfer_saga.step_spans import steps_class
from shared_kernel.observability import configure_logging
from shared_kernel.tracing import setup_tracing
from shared_kernel.worker_app import background_worker_app, operations_pool, postgres_check, serve


def create_app(settings: TransferSagaSettings) -> Litestar:
    """The saga task and the deadline runner, plus /health/live, /health/ready and /metrics."""
    store = LedgerEventStore(
        env=event_store_env(settings.database_url, pool_size=settings.postgres_pool_size)
    )
    pool = operations_pool(settings.database_url, "transfer-saga", max_size=3)
    saga = TransferSaga(
        settings, pool, steps_class()(store, snapshot_interval=settings.snapshot_interval)
    )

    # Deadlines run here: a long-running writer process that already elects a leader.
    deadlines = DeadlineRunner(
        database_url=settings.database_url,
        pool=pool,
        store=store,
        poll_seconds=settings.transfer_saga_poll_seconds,
        batch_size=settings.transfer_saga_batch_size,
        outages=OUTAGES,
    )

    def leadership(loop: LeaderLoop) -> Callable[[], Awaitable[str]]:
        async def check() -> str:
            if loop.status.role is Role.FAILING:
                raise RuntimeError(loop.status.last_error)
            return loop.status.role.value

        return check

    async def work() -> None:
        await asyncio.gather(saga.run(), deadlines.run())

    async def close_store() -> None:
        await asyncio.to_thread(store.close)

    checks = {
        "postgres": postgres_check(pool),
        "saga": leadership(saga),
        "deadlines": leadership(deadlines),
    }
    return background_worker_app(
        "transfer-saga", work, checks, pool=pool, on_close=[close_store]
    )


def main(settings: TransferSagaSettings) -> None:
    """Serve the transfer saga; ``settings`` were checked by ``shared_kernel.startup``."""
    configure_logging("transfer_saga", settings.log_level, settings.log_format)
    setup_tracing("transfer_saga")
    app = build_or_exit("transfer_saga", settings.database_url, lambda: create_app(settings))
    serve(app, settings.host, settings.transfer_saga_port, access_log=False)
