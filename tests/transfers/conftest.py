"""One command service and one transfer saga per test module, on the module's own database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.processes import Stack, scratch_stack


@pytest.fixture(scope="module")
def ledger_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``python -m command_service`` and ``python -m command_service.transfer_saga``, ready."""
    # A short lease, so tests of abandoned idempotent attempts need not wait long.
    log_dir = tmp_path_factory.mktemp("transfers")
    with scratch_stack(log_dir, IDEMPOTENCY_LEASE_SECONDS="2") as stack:
        yield stack.start("command", "saga")


@pytest.fixture(scope="module")
def ledger_database(ledger_stack: Stack) -> str:
    return ledger_stack.database_url


@pytest.fixture(scope="module")
def client(ledger_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ledger_stack.process("command").url, timeout=30) as client:
        yield client
