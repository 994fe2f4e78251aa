"""One command service process per test module: starting it costs more than most tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.infra import scratch_database, unique_stream_name
from tests.support.processes import ServiceProcess, Stack


@pytest.fixture(scope="module")
def command_database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="module")
def command_service(
    command_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The real ``python -m command_service``, ready (Postgres and Redis answered)."""
    stack = Stack(
        database_url=command_database,
        stream_name=unique_stream_name(),
        log_dir=tmp_path_factory.mktemp("command_service"),
    )
    stack.start("command")
    yield stack.process("command")
    stack.stop()
