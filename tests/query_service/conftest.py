"""One query service over one seeded scratch database, shared by the read-only tests.

Tests that change checkpoints or need other settings start their own process
with the ``stack`` fixture instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.query_service.read_model_writer import ReadModelWriter
from tests.support.processes import scratch_stack

#: Small, so "limit above the maximum" and multi-page walks stay cheap.
PAGE_SIZE_MAX = 20


@dataclass
class QueryService:
    client: httpx.Client
    writer: ReadModelWriter


@pytest.fixture(scope="package")
def query_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    # Short waits: a fuzzed min_position ahead of the checkpoint answers 412 quickly.
    log_dir = tmp_path_factory.mktemp("query_service")
    with scratch_stack(log_dir, PAGE_SIZE_MAX=str(PAGE_SIZE_MAX), MAX_WAIT_SECONDS="0.2") as stack:
        process = stack.process("query").start()
        with httpx.Client(base_url=process.url, timeout=10.0) as client:
            yield QueryService(client=client, writer=ReadModelWriter(stack.database_url))
