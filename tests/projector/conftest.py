"""Fixtures of the projector tests that drive its batch code directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from projector.batch import BatchApplier
from projector.dead_letters import DeadLetters
from projector.projections import PROJECTIONS
from tests.support.infra import REDIS_URL


@pytest.fixture
async def redis(stream_name: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def applier(redis: Redis, stream_name: str) -> BatchApplier:
    """Every projection, dead-lettering into this test's own stream."""
    return BatchApplier(PROJECTIONS, DeadLetters(redis, f"{stream_name}:dead-letter"))
