"""One command service and one transfer saga per test module, on the module's own database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.infra import scratch_database, unique_stream_name
from tests.support.processes import Stack


@pytest.fixture(scope="module")
def ledger_database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="module")
def ledger_stack(
    ledger_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """``python -m command_service`` and ``python -m command_service.transfer_saga``, ready."""
    stack = Stack(
        database_url=ledger_database,
        stream_name=unique_stream_name(),
        log_dir=tmp_path_factory.mktemp("transfers"),
        # A short lease, so tests of abandoned idempotent attempts need not wait long.
        extra_env={"IDEMPOTENCY_LEASE_SECONDS": "2"},
    )
    stack.start("command", "saga")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def client(ledger_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ledger_stack.process("command").url, timeout=30) as client:
        yield client
