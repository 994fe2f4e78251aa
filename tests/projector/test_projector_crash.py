"""kill -9 of the projector while events stream in: after a restart nothing is lost or doubled."""

from __future__ import annotations

import psycopg
import pytest
import redis

from tests.support.ledger_writer import BackgroundWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    PROJECTION_NAMES,
    checkpoints,
    expected_read_models,
    live_read_models,
    store_head,
    wait_until_projected,
)
from tests.support.streams import pending_count, wait_for

pytestmark = pytest.mark.processes


def test_kill_9_mid_stream_then_restart_read_models_equal_the_fold(
    stack: Stack, redis_client: redis.Redis, stream_name: str, database_url: str
) -> None:
    stack.extra_env.update(PROJECTOR_BATCH_SIZE="50", CLAIM_IDLE_MS="500")
    stack.process("relay").start()
    projector = stack.process("projector").start()
    with BackgroundWriter(database_url, seed=11) as writer:
        wait_until_projected(database_url, position=300)
        projector.kill()
        assert writer.running
        projector.start()
        wait_until_projected(database_url, position=store_head(database_url))  # while writing

    wait_until_projected(database_url)
    head = store_head(database_url)
    expected = expected_read_models(database_url)
    assert live_read_models(database_url) == expected
    assert checkpoints(database_url) == dict.fromkeys(PROJECTION_NAMES, head)
    with psycopg.connect(database_url) as conn:
        lines = conn.execute("SELECT count(*) FROM account_transactions").fetchone()
    assert lines == (len(expected.transactions),)  # no statement line twice
    # The killed consumer's unacknowledged entries are claimed and acknowledged.
    wait_for(lambda: pending_count(redis_client, stream_name, "projector") == 0, what="all acked")
