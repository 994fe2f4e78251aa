"""Fixtures: a scratch database and stream per test, a writer into it, the real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.infra import REDIS_URL, delete_stream, scratch_database, unique_stream_name
from tests.support.ledger_writer import LedgerWriter
from tests.support.processes import Stack


@pytest.fixture
def database_url() -> Iterator[str]:
    """A freshly migrated database of this test's own."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def stream_name() -> Iterator[str]:
    """A Redis Stream key of this test's own, deleted afterwards."""
    name = unique_stream_name()
    yield name
    delete_stream(name)


@pytest.fixture
def writer(database_url: str) -> Iterator[LedgerWriter]:
    """Appends to this test's event store as the command service would."""
    ledger = LedgerWriter(database_url)
    yield ledger
    ledger.close_store()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def stack(
    database_url: str, stream_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """The processes (none started yet) wired to this test's database and stream."""
    stack = Stack(database_url=database_url, stream_name=stream_name, log_dir=tmp_path)
    yield stack
    stack.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(stack.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
