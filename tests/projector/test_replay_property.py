"""Property: the read models fed through the stream equal those rebuilt from the store.

For any valid history (opens, deposits, withdrawals, closes, and transfers
stopped at any step of their saga: requested, debited, completed, refunded or
failed), applying the log as the projector receives it from the
Redis Stream (in batches of any size, with any prefix of the stream lost) and
rebuilding it by the store catch-up path (in batches of any size) give the
same rows, and both equal the independent reference fold. Both paths run the
projector's real code against real PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import psycopg
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from command_service.relay.publisher import StreamPublisher
from projector.batch import BatchApplier
from projector.consumer import StreamConsumer, to_item
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from projector.projector import Projector
from projector.settings import ProjectorSettings
from shared_kernel.event_log import read_log
from tests.support.infra import REDIS_URL
from tests.support.ledger_writer import LedgerWriter
from tests.support.reference_fold import expected_read_models, live_read_models
from tests.support.transfer_writer import Outcome, TransferWriter

#: Every read-model table, emptied between examples.
READ_MODELS = ", ".join(table for projection in PROJECTIONS for table in projection.TABLES)

Command = tuple[str, int, int, int, Outcome]
KINDS = ["open", "deposit", "deposit", "withdraw", "close", "transfer", "transfer"]
OUTCOMES: list[Outcome] = ["completed", "completed", "refunded", "failed", "requested", "debited"]

commands = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=1, max_value=1_000),
        # How far a transfer gets: to its end, or stopped mid-way as a saga
        # between two steps leaves it.
        st.sampled_from(OUTCOMES),
    ),
    min_size=1,
    max_size=40,
)


def record_history(transfers: TransferWriter, history: list[Command]) -> None:
    """Turn arbitrary commands into a valid history: skip what the rules would refuse."""
    writer = transfers.ledger
    accounts: list[UUID] = []
    for kind, index, other, amount, outcome in history:
        if kind == "open" or not accounts:
            accounts.append(writer.open(currency="EUR"))
            continue
        account = writer.accounts[accounts[index % len(accounts)]]
        if account.status == "closed":
            continue
        if kind == "deposit":
            writer.deposit(account.id, amount, reference=f"r{amount}")
        elif kind == "withdraw" and account.balance > 0:
            writer.withdraw(account.id, min(amount, account.balance))
        elif kind == "close" and transfers.can_close(account.id):
            writer.close(account.id)
        elif kind == "transfer":
            target = accounts[other % len(accounts)]
            if target == account.id:
                continue
            ending = outcome
            if account.balance < amount and outcome != "requested":
                ending = "failed"
            elif outcome == "completed" and writer.accounts[target].status == "closed":
                ending = "refunded"
            transfers.transfer(account.id, target, amount, ending)


def forget_everything(database_url: str, client: redis.Redis, stream: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"TRUNCATE ledger_events, {READ_MODELS}, projection_checkpoints RESTART IDENTITY"
        )
    client.delete(stream, f"{stream}:dead-letter")


def forget_read_models(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {READ_MODELS}, projection_checkpoints")


async def project(settings: ProjectorSettings, *, through_stream: bool, lost: int = 0) -> None:
    """Run the projector's own code once over the whole log, by one path."""
    redis = Redis.from_url(settings.redis_url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    )
    await pool.open()
    consumer = StreamConsumer(
        redis,
        stream_name=settings.stream_name,
        group=settings.consumer_group,
        consumer="property",
        batch_size=settings.projector_batch_size,
        block_ms=1,
    )
    applier = BatchApplier(PROJECTIONS, DeadLetters(redis, settings.dead_letter_stream))
    projector = Projector(settings, pool, consumer, applier)
    try:
        async with pool.connection() as conn:
            log = await read_log(conn, after=0, limit=1_000_000)
        if through_stream:
            publisher = StreamPublisher(redis, settings.stream_name, max_length=1_000_000)
            await publisher.publish(log)
            if lost:  # Redis lost the oldest entries (at least one survives)
                keep = max(1, len(log) - lost)
                await redis.xtrim(settings.stream_name, maxlen=keep, approximate=False)
            await consumer.ensure_group()
            while entries := await consumer.read_new():
                await projector.project([to_item(entry_id, fields) for entry_id, fields in entries])
                await consumer.ack([entry_id for entry_id, _ in entries])
        else:
            await projector.catch_up(log[-1].position)
    finally:
        await pool.close()
        await redis.aclose()


@settings(
    max_examples=25,
    deadline=None,
    # The database and stream are reset at the start of every example.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=commands,
    stream_batch=st.integers(min_value=1, max_value=30),
    catch_up_batch=st.integers(min_value=1, max_value=30),
    lost=st.integers(min_value=0, max_value=10),
)
def test_stream_path_and_store_path_give_the_reference_fold(
    *,
    database_url: str,
    stream_name: str,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    history: list[Command],
    stream_batch: int,
    catch_up_batch: int,
    lost: int,
) -> None:
    forget_everything(database_url, redis_client, stream_name)
    writer.accounts.clear()
    record_history(TransferWriter(writer), history)
    expected = expected_read_models(database_url)
    settings = ProjectorSettings(
        database_url=database_url,
        redis_url=REDIS_URL,
        stream_name=stream_name,
        projector_batch_size=stream_batch,
        catch_up_batch_size=catch_up_batch,
    )

    asyncio.run(project(settings, through_stream=True, lost=lost))
    from_stream = live_read_models(database_url)
    forget_read_models(database_url)
    asyncio.run(project(settings, through_stream=False))
    from_store = live_read_models(database_url)

    assert from_stream == expected
    assert from_store == expected
