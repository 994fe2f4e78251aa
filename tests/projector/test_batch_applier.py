"""The projector's batch transaction, driven directly against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
import psycopg
import pytest
from psycopg import AsyncConnection
from redis.asyncio import Redis

from projector.batch import BatchApplier
from shared_kernel.checkpoint_news import CheckpointsAdvanced
from shared_kernel.event_log import read_log
from shared_kernel.settings import PROJECTION_CHANNEL
from tests.support.ledger_writer import LedgerWriter
from tests.support.reference_fold import (
    PROJECTION_NAMES,
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
)


def news(position: int, projections: Sequence[str]) -> CheckpointsAdvanced:
    """What a batch of the one partition that blocked nothing tells its listeners."""
    return CheckpointsAdvanced(position, tuple(projections))


async def connect(database_url: str) -> AsyncConnection[Any]:
    return await AsyncConnection.connect(database_url, autocommit=True)


async def test_a_batch_commits_rows_and_checkpoints_and_notifies_the_new_position(
    database_url: str, writer: LedgerWriter, applier: BatchApplier
) -> None:
    writer.write_random(60)
    listener = await connect(database_url)
    await listener.execute(f"LISTEN {PROJECTION_CHANNEL}")
    async with await connect(database_url) as conn:
        log = await read_log(conn, after=0, limit=1_000)
        outcome = await applier.apply(conn, log)

    payloads = [
        msgspec.json.decode(n.payload, type=CheckpointsAdvanced)
        async for n in listener.notifies(timeout=5, stop_after=1)
    ]
    await listener.close()
    head = store_head(database_url)
    assert (outcome.consumed, outcome.applied, outcome.checkpoint) == (60, 60, head)
    assert payloads == [news(head, PROJECTION_NAMES)]
    assert checkpoints(database_url) == dict.fromkeys(PROJECTION_NAMES, head)
    assert live_read_models(database_url) == expected_read_models(database_url)


async def test_entries_at_or_below_the_checkpoint_are_skipped(
    database_url: str, writer: LedgerWriter, applier: BatchApplier
) -> None:
    writer.write_random(40)
    async with await connect(database_url) as conn:
        log = await read_log(conn, after=0, limit=1_000)
        await applier.apply(conn, log[:25])
        again = await applier.apply(conn, log)  # a redelivery overlapping what is applied

    assert (again.consumed, again.applied) == (40, 15)
    assert live_read_models(database_url) == expected_read_models(database_url)


async def test_a_gap_stops_the_batch_where_the_store_must_fill_in(
    database_url: str, writer: LedgerWriter, applier: BatchApplier
) -> None:
    writer.write_random(30)
    async with await connect(database_url) as conn:
        log = await read_log(conn, after=0, limit=1_000)
        outcome = await applier.apply(conn, log[:10] + log[20:])

    assert (outcome.consumed, outcome.checkpoint, outcome.gap_before) == (10, 10, 20)


async def test_a_database_outage_is_raised_not_dead_lettered(
    database_url: str, writer: LedgerWriter, applier: BatchApplier, redis: Redis, stream_name: str
) -> None:
    writer.write_random(20)
    conn = await connect(database_url)
    log = await read_log(conn, after=0, limit=1_000)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

    with pytest.raises(psycopg.OperationalError):
        await applier.apply(conn, log)
    await conn.close()

    assert await redis.xlen(f"{stream_name}:dead-letter") == 0
    async with await connect(database_url) as fresh:  # once PostgreSQL answers again
        outcome = await applier.apply(fresh, log)
    assert outcome.applied == 20
    assert live_read_models(database_url) == expected_read_models(database_url)


async def test_a_row_write_postgresql_refuses_with_the_advance_blocks_only_its_stream(
    database_url: str, writer: LedgerWriter, applier: BatchApplier, redis: Redis, stream_name: str
) -> None:
    """The projections' row writes reach PostgreSQL in the statement that advances the
    checkpoints; one refused there (a constraint only the server knows) is isolated as a
    refusal inside a projection's ``apply`` is: its event parked once, its stream blocked
    for that projection alone, everything else applied."""
    small, large = writer.open(), writer.open()
    writer.deposit(small, 10)
    refused = writer.deposit(large, 5_000)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "ALTER TABLE account_transactions ADD CONSTRAINT lines_below_1000 CHECK (amount < 1000)"
        )
    async with await connect(database_url) as conn:
        outcome = await applier.apply(conn, await read_log(conn, after=0, limit=1_000))

    assert [poison.position for poison in outcome.dead_lettered] == [refused]
    assert [(b.projection, b.stream_id) for b in outcome.blocked] == [
        ("account_transactions", large)
    ]
    assert await redis.xlen(f"{stream_name}:dead-letter") == 1
    assert outcome.checkpoint == store_head(database_url)
    with psycopg.connect(database_url) as check:
        rows = check.execute("SELECT account_id, balance FROM account_balances")
        balances: dict[UUID, int] = dict(rows.fetchall())
        lines = check.execute("SELECT account_id, amount FROM account_transactions").fetchall()
    assert balances == {small: 10, large: 5_000}
    assert lines == [(small, 10)]


async def test_concurrent_batches_never_apply_a_position_twice(
    database_url: str, writer: LedgerWriter, applier: BatchApplier
) -> None:
    writer.write_random(80)
    async with await connect(database_url) as first, await connect(database_url) as second:
        log = await read_log(first, after=0, limit=1_000)
        outcomes = await asyncio.gather(applier.apply(first, log), applier.apply(second, log))

    assert sorted(outcome.applied for outcome in outcomes) == [0, 80]
    assert live_read_models(database_url) == expected_read_models(database_url)
