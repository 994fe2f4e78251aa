"""Per-batch costs that must not grow with the store: a measuring script, not a test.

``python -m bench.flat_costs`` (as the owner, ``DATABASE_URL``) fills scratch
databases and prints:

- the projector's batch time on one hot account holding 20k and 100k events:
  its history is projected first, then batches of 100 of its next events go
  through the projector's own batch transaction (every projection); the
  median of those batches is what a live projector pays per batch;
- the transfer saga's pass over 100k events of which none is a transfer
  (deposits and withdrawals): the time its ``_follow`` needs to reach the head.

Each scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from psycopg import AsyncConnection
from redis.asyncio import Redis

from bench.history import fill_store
from command_service.event_store import LedgerEventStore, event_store_env
from command_service.settings import TransferSagaSettings
from command_service.transfer_saga.saga import TransferSaga
from command_service.transfer_saga.steps import TransferSteps
from projector.batch import BatchApplier
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from schema.scratch import scratch_database
from shared_kernel.event_log import read_log
from shared_kernel.worker_app import operations_pool

#: Events per timed projector batch (the order of a live XREADGROUP batch).
BATCH = 100
#: Timed batches per measurement.
ROUNDS = 10


async def _project(
    conn: AsyncConnection[Any], applier: BatchApplier, after: int, size: int
) -> tuple[int, float]:
    """Apply the next ``size`` events after ``after``; (new position, seconds)."""
    entries = await read_log(conn, after, size)
    started = time.perf_counter()
    await applier.apply(conn, entries)
    return entries[-1].position, time.perf_counter() - started


async def _hot_batches(url: str, history: int) -> float:
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    applier = BatchApplier(PROJECTIONS, DeadLetters(redis, f"bench:{uuid.uuid4().hex}:dead"))
    try:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            position = 0
            while position < history:
                position, _ = await _project(conn, applier, position, min(5_000, history))
            await conn.execute("ANALYZE")
            times = []
            for _ in range(ROUNDS):
                position, seconds = await _project(conn, applier, position, BATCH)
                times.append(seconds)
    finally:
        await redis.aclose()
    return statistics.median(times)


def projector_batch_ms(database_url: str, history: int) -> float:
    """Median ms of a batch of BATCH events on an account already holding ``history``."""
    with scratch_database(database_url, "ledger_bench_flat") as url:
        fill_store(url, history + BATCH * ROUNDS, accounts=1)
        return 1_000 * asyncio.run(_hot_batches(url, history))


async def _saga_pass(url: str) -> float:
    settings = TransferSagaSettings(database_url=url)
    store = LedgerEventStore(env=event_store_env(url, pool_size=1))
    saga = TransferSaga(settings, operations_pool(url, "bench"), TransferSteps(store))
    try:
        async with await AsyncConnection.connect(url, autocommit=True) as reader:
            started = time.perf_counter()
            await saga._follow(reader, 0)  # the pass itself is what is timed
            return time.perf_counter() - started
    finally:
        store.close()


def saga_pass_ms(database_url: str, events: int) -> float:
    """Ms of the saga's pass over ``events`` events of which none is a transfer."""
    with scratch_database(database_url, "ledger_bench_flat") as url:
        fill_store(url, events, accounts=1_000)
        return 1_000 * asyncio.run(_saga_pass(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/ledger")
    parser.add_argument("--hot", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--saga-events", type=int, default=100_000)
    args = parser.parse_args()
    for history in args.hot:
        ms = projector_batch_ms(args.database_url, history)
        print(f"projector batch of {BATCH} on a hot account of {history:>7} events: {ms:8.1f} ms")
    if args.saga_events:
        ms = saga_pass_ms(args.database_url, args.saga_events)
        print(f"saga pass over {args.saga_events} non-transfer events:          {ms:8.1f} ms")


if __name__ == "__main__":
    main()
