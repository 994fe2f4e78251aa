"""Entries gone from Redis before the projector read them are fetched from the event store."""

from __future__ import annotations

import pytest
import redis

from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)
from tests.support.streams import metric_value, wait_until_published

pytestmark = pytest.mark.processes


#: How long the projector waits, with a silent stream, before checking the store's head.
IDLE_CATCH_UP_SECONDS = {
    # Later entries survive: their `previous` reveals the hole. With an hour
    # of idle patience only that detection can bring the events back.
    "trim-oldest": "3600",
    # Nothing survives and nothing follows: only the idle check of the
    # store's head can notice.
    "trim-all": "0.5",
    # The key is gone with its consumer group; the relay recreates the stream
    # with later events whose `previous` reveals the hole.
    "delete-then-more": "3600",
}


@pytest.mark.parametrize("loss", list(IDLE_CATCH_UP_SECONDS))
def test_projector_catches_up_from_the_store_what_redis_lost(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    loss: str,
) -> None:
    database_url, stream_name = stack.database_url, stack.stream_name
    stack.extra_env.update(
        IDLE_CATCH_UP_SECONDS=IDLE_CATCH_UP_SECONDS[loss], CATCH_UP_BATCH_SIZE="40"
    )
    stack.process("relay").start()
    writer.write_random(100)
    wait_until_published(redis_client, stream_name, database_url)
    lost = 100
    if loss == "trim-oldest":
        redis_client.xtrim(stream_name, maxlen=30, approximate=False)
        lost = 70
    elif loss == "trim-all":
        redis_client.xtrim(stream_name, maxlen=0, approximate=False)
    else:
        redis_client.delete(stream_name)
        writer.write_random(30, seed=1)
        wait_until_published(redis_client, stream_name, database_url)

    projector = stack.process("projector").start()
    wait_until_projected(database_url)

    assert live_read_models(database_url) == expected_read_models(database_url)
    assert metric_value(projector.url, "ledger_projector_catch_up_events_total") == lost
