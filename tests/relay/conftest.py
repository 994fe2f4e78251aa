"""Fixtures of the relay tests: a writer into the test's event store, and stream readers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.infra import REDIS_URL
from tests.support.ledger_writer import LedgerWriter


@pytest.fixture
def writer(database_url: str) -> Iterator[LedgerWriter]:
    ledger = LedgerWriter(database_url)
    yield ledger
    ledger.close_store()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()
