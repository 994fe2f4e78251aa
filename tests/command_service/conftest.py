"""One command service process per test module (starting it costs more than most tests),
and the real event store on a test's own database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from command_service.event_store import LedgerEventStore, event_store_env
from tests.support.processes import ServiceProcess, Stack, scratch_stack


@pytest.fixture(scope="module")
def command_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real ``python -m command_service``, ready (Postgres and Redis answered), on a
    scratch database of the module's own."""
    with scratch_stack(tmp_path_factory.mktemp("command_service")) as stack:
        yield stack.start("command")


@pytest.fixture(scope="module")
def command_service(command_stack: Stack) -> ServiceProcess:
    return command_stack.process("command")


@pytest.fixture(scope="module")
def command_database(command_stack: Stack) -> str:
    return command_stack.database_url


@pytest.fixture
def store(database_url: str) -> Iterator[LedgerEventStore]:
    """The real event store on this test's own database."""
    store = LedgerEventStore(env=event_store_env(database_url))
    yield store
    store.close()
