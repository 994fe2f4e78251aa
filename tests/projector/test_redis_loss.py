"""Redis loses everything (FLUSHALL, or killed and restarted empty) while the stack runs.

These run on a private redis-server: the shared one is never flushed or restarted.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.ledger_writer import BackgroundWriter, LedgerWriter
from tests.support.processes import Stack
from tests.support.redis_server import PrivateRedis, private_redis
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.streams import stream_top, wait_for

pytestmark = pytest.mark.processes


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture
def ledger_stack(stack: Stack, redis_server: PrivateRedis) -> Stack:
    stack.extra_env.update(REDIS_URL=redis_server.url, IDLE_CATCH_UP_SECONDS="1")
    stack.start("relay", "projector")
    return stack


def test_flushall_mid_stream_then_more_commands_read_models_end_equal(
    ledger_stack: Stack, redis_server: PrivateRedis
) -> None:
    database_url = ledger_stack.database_url
    with BackgroundWriter(database_url, seed=3) as writer:
        wait_until_projected(database_url, position=200)
        with redis_server.client() as client:
            client.flushall()
        assert writer.running
        flushed_at = writer.written
        wait_for(lambda: writer.written >= flushed_at + 100, what="more commands after the flush")

    wait_until_projected(database_url)
    assert live_read_models(database_url) == expected_read_models(database_url)
    with redis_server.client() as client:  # the stream was recreated by the relay's XADDs
        wait_for(
            lambda: stream_top(client, ledger_stack.stream_name) == store_head(database_url),
            what="relay publishing into the flushed Redis",
        )


def test_redis_killed_and_restarted_empty_read_models_end_equal(
    ledger_stack: Stack, writer: LedgerWriter, redis_server: PrivateRedis
) -> None:
    database_url = ledger_stack.database_url
    projector = ledger_stack.process("projector")
    writer.write_random(100)
    wait_until_projected(database_url)

    redis_server.kill()
    writer.write_random(100, seed=1)  # recorded while Redis is down
    wait_for(
        lambda: httpx.get(f"{projector.url}/health/ready", timeout=5).status_code == 503,
        what="projector reporting Redis down",
    )
    redis_server.start()  # same port, nothing in it
    writer.write_random(100, seed=2)

    wait_until_projected(database_url)
    assert live_read_models(database_url) == expected_read_models(database_url)
    projector.wait_ready()
    # The relay is back too: the new server's stream ends at the store's head.
    with redis_server.client() as client:
        wait_for(
            lambda: stream_top(client, ledger_stack.stream_name) == store_head(database_url),
            what="relay publishing to the restarted Redis",
        )
