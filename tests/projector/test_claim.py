"""Entries a dead consumer left pending are claimed and applied by the projector."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack
from tests.support.reference_fold import (
    expected_read_models,
    live_read_models,
    wait_until_projected,
)
from tests.support.streams import (
    consumer_names,
    metric_value,
    pending_count,
    wait_for,
    wait_until_published,
)

pytestmark = pytest.mark.processes


def test_pending_entries_of_a_dead_consumer_are_claimed(
    stack: Stack,
    writer: LedgerWriter,
    redis_client: redis.Redis,
    stream_name: str,
    database_url: str,
) -> None:
    stack.process("relay").start()
    writer.write_random(40)
    wait_until_published(redis_client, stream_name, database_url)
    # A consumer takes every entry and dies before acknowledging any.
    redis_client.xgroup_create(stream_name, "projector", id="0")
    taken: Any = redis_client.xreadgroup(
        "projector", "dead-consumer", {stream_name: ">"}, count=100
    )
    assert len(taken[0][1]) == 40

    # No idle catch-up from the store: only claiming can bring these events in.
    stack.extra_env.update(CLAIM_IDLE_MS="200", IDLE_CATCH_UP_SECONDS="3600")
    projector = stack.process("projector").start()
    wait_until_projected(database_url)

    assert live_read_models(database_url) == expected_read_models(database_url)
    assert metric_value(projector.url, "ledger_projector_catch_up_events_total") == 0
    # Acknowledged after the commit, and the dead consumer then dropped from the group.
    wait_for(lambda: pending_count(redis_client, stream_name, "projector") == 0, what="all acked")
    wait_for(
        lambda: "dead-consumer" not in consumer_names(redis_client, stream_name, "projector"),
        what="dead consumer forgotten",
    )
