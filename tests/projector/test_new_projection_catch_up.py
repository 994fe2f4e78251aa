"""A projection added to a database the others have already projected catches up on its own.

It starts without a checkpoint row (or at 0) while the stream's entries start
far past it: the projector brings it level from the event store when it
starts, without moving the other projections' checkpoints back (which would
re-apply their events and dead-letter them as version gaps).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from projector.batch import BatchApplier
from projector.consumer import StreamConsumer
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from projector.projector import Projector
from projector.settings import ProjectorSettings
from schema.migrate import migrate, sql_files
from tests.projector.test_transfer_projections import project_all
from tests.support.infra import REDIS_URL, scratch_database
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    PROJECTION_NAMES,
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
)
from tests.support.streams import wait_for
from tests.support.transfer_writer import Outcome, TransferWriter

NEW = ("transfers", "currency_totals", "owner_summaries", "holds")


def all_at_head(database_url: str) -> bool:
    reached = checkpoints(database_url)
    head = store_head(database_url)
    return set(reached) == set(PROJECTION_NAMES) and min(reached.values()) >= head


def write_history(writer: LedgerWriter, seed: int, *, with_transfers: bool) -> None:
    writer.write_random(60, seed=seed)
    if with_transfers:
        transfers = TransferWriter(writer)
        funded = [a for a in writer.accounts.values() if a.status == "open" and a.balance > 1]
        endings: tuple[Outcome, ...] = ("completed", "refunded", "completed", "debited")
        outcomes = itertools.cycle(endings)
        for source in funded:
            target = writer.open("payee", currency=source.currency)
            transfers.transfer(source.id, target, source.balance // 2, next(outcomes))
        assert transfers.transfers, "the history has transfers"


async def run_projector_until(settings: ProjectorSettings, done: Any) -> None:
    """The projector's real loop, on a stream that never delivers anything, until ``done()``."""
    client = Redis.from_url(settings.redis_url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    )
    await pool.open()
    consumer = StreamConsumer(
        client, stream_name=settings.stream_name, group="catch-up", consumer="test",
        batch_size=100, block_ms=20,
    )  # fmt: skip
    applier = BatchApplier(PROJECTIONS, DeadLetters(client, settings.dead_letter_stream))
    task = asyncio.create_task(Projector(settings, pool, consumer, applier).run())
    try:
        while not await asyncio.to_thread(done):
            assert not task.done(), task
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
        await client.aclose()


async def test_a_projection_without_a_checkpoint_is_caught_up_at_start(
    database_url: str, stream_name: str, writer: LedgerWriter
) -> None:
    write_history(writer, seed=3, with_transfers=True)
    old = [projection for projection in PROJECTIONS if projection.NAME not in NEW]
    async with Redis.from_url(REDIS_URL) as client:
        await project_all(database_url, BatchApplier(old, DeadLetters(client, "unused")))
    head = store_head(database_url)
    assert checkpoints(database_url) == {"account_balances": head, "account_transactions": head}
    settings = ProjectorSettings(
        database_url=database_url,
        redis_url=REDIS_URL,
        stream_name=stream_name,
        catch_up_batch_size=17,
        # Only the start-up catch-up may bring the new projections level: the
        # stream stays empty, and the idle check of the store's head never comes.
        idle_catch_up_seconds=3600,
    )

    await run_projector_until(settings, lambda: all_at_head(database_url))

    assert live_read_models(database_url) == expected_read_models(database_url)
    assert checkpoints(database_url) == dict.fromkeys(PROJECTION_NAMES, head)
    assert redis.Redis.from_url(REDIS_URL).xlen(settings.dead_letter_stream) == 0


def fill_old_read_models(database_url: str) -> None:
    """What the projector of issue 2 left in a database migrated up to 003."""
    expected = expected_read_models(database_url)
    head = store_head(database_url)
    with psycopg.connect(database_url) as conn:
        for account_id, row in expected.balances.items():
            conn.execute(
                "INSERT INTO account_balances (account_id, owner, currency, balance, status,"
                " version, opened_at, updated_at, last_position)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (account_id, *row[:8]),
            )
        for position, line in expected.transactions.items():
            conn.execute(
                "INSERT INTO account_transactions (position, account_id, version, kind, amount,"
                " currency, balance_after, reference, recorded_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (position, *line[:8]),
            )
        for name in ("account_balances", "account_transactions"):
            conn.execute(
                "INSERT INTO projection_checkpoints (projection, position) VALUES (%s, %s)",
                (name, head),
            )


@pytest.mark.processes
def test_an_existing_database_upgraded_with_transfers_equals_the_fold(
    stream_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read side as the first migrations left it; the write side as today's writer needs it
    # (its commands table and one-statement append), since it writes the history.
    writer_files = ("009_recorded_commands.sql", "011_append_function.sql")
    issue_2_files = [(n, text) for n, text in sql_files() if n < "004" or n in writer_files]
    with scratch_database(migrated=False) as database_url:
        monkeypatch.setattr("schema.migrate.sql_files", lambda: issue_2_files)
        migrate(database_url)
        writer = LedgerWriter(database_url)
        try:
            write_history(writer, seed=5, with_transfers=False)
            fill_old_read_models(database_url)
            monkeypatch.undo()
            assert "006_transfer_read_models.sql" in migrate(database_url)
            write_history(writer, seed=6, with_transfers=True)
        finally:
            writer.close_store()
        stack = Stack(database_url=database_url, stream_name=stream_name, log_dir=tmp_path)
        try:
            stack.start("relay", "projector")
            wait_for(lambda: all_at_head(database_url), timeout=60, what="every projection")
            assert live_read_models(database_url) == expected_read_models(database_url)
            assert "catching them up from the event store" in stack.process("projector").logs()
            assert redis.Redis.from_url(REDIS_URL).xlen(f"{stream_name}:dead-letter") == 0
        except BaseException:
            print(stack.logs())
            raise
        finally:
            stack.stop()
